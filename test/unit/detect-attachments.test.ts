import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAttachment } from '../../src/detect/index.js';

const none = new Set<string>();
const classify = (name: string | undefined, mimeType = 'application/octet-stream') =>
  classifyAttachment({ name, mimeType, size: 1000 }, none);

describe('classifyAttachment', () => {
  it('executables and scripts', () => {
    for (const name of ['setup.exe', 'x.SCR', 'run.bat', 'a.js', 'b.vbs', 'c.ps1', 'd.hta', 'e.msi', 'f.jar', 'g.lnk', 'h.iso', 'i.img']) {
      assert.equal(classify(name), 'executable', name);
    }
  });

  it('trailing dots and spaces', () => {
    assert.equal(classify('run.exe.'), 'executable');
    assert.equal(classify('run.exe  '), 'executable');
  });

  it('double extensions', () => {
    assert.equal(classify('invoice.pdf.exe'), 'double_extension');
    assert.equal(classify('Invoice.PDF   .scr'), 'double_extension');
    assert.equal(classify('setup.v2.exe'), 'executable');
  });

  it('macro documents', () => {
    for (const name of ['q3.docm', 'q3.xlsm', 'q3.pptm', 'q3.dotm', 'q3.xlam']) assert.equal(classify(name), 'macro_document', name);
    assert.equal(classify(undefined, 'application/vnd.ms-excel.sheet.macroenabled.12'), 'macro_document');
  });

  it('harmless names', () => {
    for (const name of ['scan0001.pdf', 'report.docx', 'photo.jpg', 'invoice.exe.pdf', 'archive.zip', 'exe']) {
      assert.equal(classify(name, 'application/pdf'), undefined, name);
    }
    assert.equal(classify(undefined, 'image/jpeg'), undefined);
  });

  it('executable MIME type behind a harmless name', () => {
    assert.equal(classify('scan.pdf', 'application/x-msdownload'), 'executable');
  });

  it('blocked SHA-256 in any case', () => {
    const digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    const blocked = new Set([digest]);
    const attachment = { name: 'scan.pdf', mimeType: 'application/pdf', size: 0, sha256: digest.toUpperCase() };
    assert.equal(classifyAttachment(attachment, blocked), 'blocked_sha256');
    assert.equal(classifyAttachment({ ...attachment, sha256: '0'.repeat(64) }, blocked), undefined);
  });
});
