/**
 * Anomaly names the SMTP stage records, with what each one means. Names are stable: detectors
 * and documentation refer to them. Where Zeek has a weird for the same condition, the name is
 * Zeek's (smtp_invalid_bdat_command, smtp_huge_bdat_chunk).
 */
export const SMTP_ANOMALIES = {
  smtp_line_too_long: 'A command or reply line exceeded maxLineLength and was cut to it.',
  smtp_bare_lf: 'A client line ended with LF without CR (commands: once per session; body: once per transaction with the count).',
  smtp_bare_lf_end_of_data:
    'A DATA body ended at a "." line with a bare LF before or after the dot ("<LF>.<LF>", "<LF>.<CR><LF>" or "<CR><LF>.<LF>"), which mailtap takes for the end of data as Postfix does. Servers that require CRLF read on, so the bytes after it may be a smuggled message.',
  smtp_bare_cr:
    'A client sent a CR without LF (commands: once per session; body: once per transaction with the count and the number of "." lines next to a bare CR). A bare CR never ends a line or the body, but a receiver that takes it for a line ending may see an end of data there, as in SMTP smuggling.',
  smtp_unmatched_reply: 'A server reply arrived while no command was waiting for one.',
  smtp_missing_reply: 'A reply belonged to a later command (a lost greeting, or a code such as 354 or 334 that answers one command only); the commands before it were given no reply.',
  smtp_invalid_reply: 'A server line did not start with a three-digit reply code.',
  smtp_reply_code_mismatch: 'The lines of one multi-line reply carried different codes.',
  smtp_reply_too_long: 'A reply had more lines or text than the stage keeps; the rest was dropped.',
  smtp_unknown_command: 'A client line did not start with a known command verb.',
  smtp_invalid_mail_from: 'MAIL was not followed by FROM: and a path.',
  smtp_invalid_rcpt_to: 'RCPT was not followed by TO: and a path.',
  smtp_missing_mail_from: 'RCPT, DATA or BDAT came without a MAIL FROM; a transaction was opened for it.',
  smtp_command_out_of_sequence: 'RCPT, DATA or BDAT without MAIL FROM was rejected by the server; no transaction was reported for it.',
  smtp_too_many_recipients: 'A transaction had more RCPT commands than maxRecipients; the rest were counted only.',
  smtp_too_many_pending_commands:
    'The queue of commands awaiting replies reached maxPendingCommands entries. Replies stay paired in order, but some RCPT replies were not recorded, and if that did not free enough entries, later commands were handled as if their replies were not seen.',
  smtp_invalid_bdat_command: 'BDAT had no valid chunk size or had words other than LAST; no chunk was read.',
  smtp_huge_bdat_chunk: 'BDAT announced a chunk size beyond 2^53 - 1; no chunk was read.',
  smtp_mixed_data_bdat: 'One transaction used both DATA and BDAT.',
  smtp_body_before_354: 'The client sent more bytes after DATA than the stage holds while no 354 arrived; they were read as the body.',
  smtp_data_rejected_during_body: 'DATA was rejected after the stage had started to read the body; the rest is read as commands.',
  smtp_reply_during_body: 'A reply arrived while the client was still sending a DATA body; the end of data was missed.',
  smtp_content_gap: 'Bytes were missing from a direction; the parser resynchronised at the next command or reply.',
  smtp_auth_decode_failed: 'An AUTH response that should name the user was not valid base64.',
  smtp_body_sink_error: 'The body consumer threw; the rest of that body was not passed to it.',
  smtp_event_error: 'A transaction or session consumer threw; the exception was caught.',
  smtp_too_many_anomalies: 'maxAnomaliesPerSession was reached; later anomalies were counted only.',
} as const;

export type SmtpAnomalyName = keyof typeof SMTP_ANOMALIES;
