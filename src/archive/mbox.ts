// Writes and reads mboxrd files: "From " separator lines, and ">From " quoting that round-trips exactly.

const weekdays = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** asctime() in UTC, as mbox separator lines carry it. */
function asctime(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  return (
    `${weekdays[date.getUTCDay()]} ${months[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} ${date.getUTCFullYear()}`
  );
}

/** One message as an mboxrd record: separator, LF line ends, quoted From lines, blank line after. */
export function mboxRecord(message: Buffer, sender: string, date: Date): Buffer {
  const envelope = /^[^\s@]+@[^\s@]+$/.test(sender) ? sender : 'MAILER-DAEMON';
  // latin1 keeps every byte as one char, so 8-bit bodies pass through unchanged.
  const text = message
    .toString('latin1')
    .replace(/\r\n/g, '\n')
    .replace(/^(>*From )/gm, '>$1');
  const ending = text.endsWith('\n') ? '' : '\n';
  return Buffer.from(`From ${envelope} ${asctime(date)}\n${text}${ending}\n`, 'latin1');
}

/** Splits an mboxrd file back into messages (LF line ends, quoting undone). */
export function parseMbox(mbox: Buffer): Buffer[] {
  const text = mbox.toString('latin1');
  const messages: Buffer[] = [];
  const records = text.split(/^From [^\n]*\n/m);
  // The text before the first separator is empty in a well-formed file.
  for (const record of records.slice(1)) {
    const body = record.replace(/\n$/, '').replace(/^>(>*From )/gm, '$1');
    messages.push(Buffer.from(body, 'latin1'));
  }
  return messages;
}
