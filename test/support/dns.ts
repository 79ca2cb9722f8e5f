/**
 * A real DNS server on loopback (dns2, UDP) for domain verification tests: it answers TXT queries
 * from a table the test fills, NXDOMAIN for names it does not know, and can be told to fail
 * (SERVFAIL). Portico reaches it through PORTICO_DNS_SERVER (`127.0.0.1:<port>`); no lookup
 * ever leaves this machine.
 */
import dns2 from 'dns2';
import type { AddressInfo } from 'node:net';

const { Packet } = dns2;
/** RFC 1035 §4.1.1 response codes (dns2 has them as Packet.RCODE, but its typings do not). */
const SERVFAIL = 2;
const NXDOMAIN = 3;

export interface TestDns {
  /** `127.0.0.1:<port>`, the value for PORTICO_DNS_SERVER. */
  server: string;
  /** TXT records by lower-case name (no trailing dot); each value is one record (an array: its character-strings). */
  txt: Map<string, (string | string[])[]>;
  /** Names answered with SERVFAIL. */
  failing: Set<string>;
  /** Every name asked, lower-case, in order. */
  queries: string[];
  close(): Promise<void>;
}

export async function startDns(): Promise<TestDns> {
  const txt = new Map<string, (string | string[])[]>();
  const failing = new Set<string>();
  const queries: string[] = [];
  const server = dns2.createUDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    const question = request.questions[0];
    const name = (question?.name ?? '').toLowerCase().replace(/\.$/, '');
    queries.push(name);
    if (failing.has(name)) {
      response.header.rcode = SERVFAIL;
    } else if (!txt.has(name)) {
      response.header.rcode = NXDOMAIN;
    } else if (question?.type === Packet.TYPE.TXT) {
      for (const data of txt.get(name)!) response.answers.push({ name: question.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 1, data } as never);
    }
    void send(response);
  });
  await server.listen(0, '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  return {
    server: `127.0.0.1:${port}`,
    txt,
    failing,
    queries,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
