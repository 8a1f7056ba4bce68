// An independent DKIM verifier for tests: Debian's python3-dkim (dkimpy), given the TXT record instead of a DNS lookup.
import { execFile } from 'node:child_process';

const verifier = `
import os, sys, dkim
name = os.environ['DKIM_NAME'].rstrip('.').lower()
record = os.environ['DKIM_RECORD'].encode()
def lookup(query, timeout=5):
    asked = (query.decode() if isinstance(query, bytes) else query).rstrip('.').lower()
    return record if asked == name else None
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lookup)
print('pass' if ok else 'fail')
sys.exit(0 if ok else 1)
`;

/** The name and the TXT value (the quoted strings joined) of a zone-file line `NAME. IN TXT ( "…" "…" )`. */
export function parseTxtRecord(line: string): { name: string; value: string } {
  const name = line.trim().split(/\s+/)[0];
  const value = [...line.matchAll(/"([^"]*)"/g)].map((match) => match[1]).join('');
  return { name, value };
}

/** Whether dkimpy verifies the DKIM-Signature of `message` against `record` (a line as `embargo dkim generate` prints). */
export function verifyDkim(message: Buffer, record: string): Promise<boolean> {
  const { name, value } = parseTxtRecord(record);
  return new Promise((resolve, reject) => {
    // Debian's python3 (the one python3-dkim installs into), whatever python3 comes first on PATH.
    const child = execFile('/usr/bin/python3', ['-c', verifier], { env: { ...process.env, DKIM_NAME: name, DKIM_RECORD: value } }, (error, stdout, stderr) => {
      if (stdout.trim() === 'pass') resolve(true);
      else if (stdout.trim() === 'fail') resolve(false);
      else reject(new Error(`dkimpy did not run: ${error?.message ?? ''} ${stderr}`));
    });
    child.stdin!.end(message);
  });
}
