import type { AttachmentObservation } from './types.js';

/** Reason an attachment is risky. */
export type AttachmentRisk = 'blocked_sha256' | 'executable' | 'double_extension' | 'macro_document' | 'parts_unchecked';

/**
 * Extensions that Windows runs, interprets or mounts on a double click: programs, installers,
 * scripts, shortcuts, help and control-panel files, and disk images that carry any of these
 * past mail filters.
 */
const EXECUTABLE_EXTENSIONS = new Set([
  'exe', 'scr', 'com', 'pif', 'cpl', 'dll', 'sys', 'drv', 'ocx',
  'msi', 'msp', 'mst', 'msix', 'msixbundle', 'appx', 'appxbundle', 'appinstaller', 'application',
  'bat', 'cmd', 'js', 'jse', 'vbs', 'vbe', 'wsf', 'wsh', 'wsc', 'sct', 'hta',
  'ps1', 'psm1', 'psd1', 'ps1xml', 'reg', 'inf', 'scf', 'lnk', 'url', 'gadget', 'msc', 'chm', 'hlp',
  'jar', 'xll', 'iso', 'img', 'vhd', 'vhdx',
]); // prettier-ignore

/** Macro-enabled Office formats (Office Open XML, and Excel binary .xlsb) that may contain VBA macros. */
const MACRO_EXTENSIONS = new Set([
  'docm', 'dotm', 'xlsm', 'xltm', 'xlsb', 'xlam', 'pptm', 'potm', 'ppam', 'ppsm', 'sldm',
]); // prettier-ignore

/** Extensions a sender puts before an executable one so that the name looks harmless. */
const DECOY_EXTENSIONS = new Set([
  'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'odt', 'ods', 'rtf', 'txt', 'csv', 'xml', 'htm', 'html',
  'jpg', 'jpeg', 'png', 'gif', 'bmp', 'tif', 'tiff', 'mp3', 'mp4', 'wav', 'avi', 'mov', 'zip', 'rar', '7z', 'eml',
]); // prettier-ignore

/** MIME types of Windows and Java programs, installers, scripts, shortcuts and disk images. */
const EXECUTABLE_TYPES = new Set([
  'application/x-msdownload',
  'application/x-dosexec',
  'application/x-msdos-program',
  'application/x-ms-dos-executable',
  'application/vnd.microsoft.portable-executable',
  'application/x-ms-installer',
  'application/x-msi',
  'application/x-ms-shortcut',
  'application/hta',
  'application/x-bat',
  'text/vbscript',
  'application/java-archive',
  'application/x-java-archive',
  'application/x-iso9660-image',
]);

/**
 * Classifies one attachment by its SHA-256, its file name and its MIME type. Names are compared
 * in lower case with trailing dots and spaces removed, because Windows drops them when it
 * saves a file ("run.exe." is "run.exe"). Returns undefined for an attachment none of these
 * mark as risky.
 */
export function classifyAttachment(attachment: AttachmentObservation, blocked: ReadonlySet<string>): AttachmentRisk | undefined {
  if (attachment.sha256 !== undefined && blocked.has(attachment.sha256.toLowerCase())) return 'blocked_sha256';

  if (attachment.name !== undefined) {
    const parts = attachment.name.toLowerCase().replace(/[.\s]+$/, '').split('.');
    if (parts.length >= 2) {
      const extension = (parts[parts.length - 1] as string).trim();
      if (EXECUTABLE_EXTENSIONS.has(extension)) {
        const before = parts.length >= 3 ? (parts[parts.length - 2] as string).trim() : '';
        return DECOY_EXTENSIONS.has(before) ? 'double_extension' : 'executable';
      }
      if (MACRO_EXTENSIONS.has(extension)) return 'macro_document';
    }
  }

  const type = attachment.mimeType.toLowerCase();
  if (EXECUTABLE_TYPES.has(type)) return 'executable';
  // application/vnd.ms-word.document.macroEnabled.12 and its Excel and PowerPoint siblings.
  if (type.startsWith('application/vnd.ms-') && type.includes('.macroenabled')) return 'macro_document';
  return undefined;
}
