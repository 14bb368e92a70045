// The receiving mail server of make-scan-capture.sh: smtp-server (the SMTP server library of
// the Nodemailer project) on 10.88.0.25:25, accepting every message without TLS or AUTH. It
// logs each message's size and SHA-256 to stdout and exits on SIGTERM.
import { createHash } from 'node:crypto';
import { SMTPServer } from 'smtp-server';

const server = new SMTPServer({
  name: 'relay.corp.example',
  disabledCommands: ['STARTTLS', 'AUTH'],
  authOptional: true,
  logger: false,
  onData(stream, session, callback) {
    const hash = createHash('sha256');
    let size = 0;
    stream.on('data', (chunk) => {
      size += chunk.length;
      hash.update(chunk);
    });
    stream.on('end', () => {
      const id = `Q${String(session.transaction).padStart(3, '0')}${session.id.slice(0, 6).toUpperCase()}`;
      const rcpt = session.envelope.rcptTo.map((r) => r.address).join(',');
      console.log(`${id} from=${session.envelope.mailFrom.address} to=${rcpt} size=${size} sha256=${hash.digest('hex')}`);
      callback(null, `Ok: queued as ${id}`);
    });
  },
});
server.listen(25, '10.88.0.25', () => console.log('listening on 10.88.0.25:25'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
