/**
 * Alerts as an administrator sets them up (docs/alerts.md), through bin/haoscar.js: a real agent
 * places its group (an operation that begins and ends: `failover-started`, `failover-ended`), and
 * Pacemaker's own sample agents from Debian's pacemaker-common, unchanged, are told:
 * alert_file.sh.sample writes its log line, alert_smtp.sh.sample mails an SMTP sink in this test
 * through a real sendmail (Debian's msmtp, put on the agent's PATH by the alert's `env`, configured
 * by a HOME of its own, as Pacemaker's instance attributes would; a two-line shim gives it the
 * sample's `-r`, which msmtp lacks), and a webhook gets the JSON body.
 *
 * The SMTP sink is a few lines of SMTP in this process (a test double of a mail server: no
 * mail server can be run here without taking the machine's port 25); it speaks what msmtp sends
 * (EHLO, MAIL, RCPT, DATA, QUIT) and keeps each message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, freePort, httpServiceYaml } from '../support/lab.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { waitFor } from '../support/wait.js';
import { controllerWorkflowId } from '../../workflows/shared.js';

const SAMPLES = '/usr/share/pacemaker/alerts';
const MSMTP = '/usr/bin/msmtp';

/** A minimal SMTP server: every message's envelope and data. */
function smtpSink(): { messages: { from: string; to: string[]; data: string }[]; listen: () => Promise<number>; close: () => void } {
  const messages: { from: string; to: string[]; data: string }[] = [];
  const server = createTcpServer((socket: Socket) => {
    let buffer = '';
    let inData = false;
    let current = { from: '', to: [] as string[], data: '' };
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          current.data = buffer.slice(0, end);
          buffer = buffer.slice(end + 5);
          messages.push(current);
          current = { from: '', to: [], data: '' };
          inData = false;
          socket.write('250 queued\r\n');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'MAIL') current.from = line.replace(/^MAIL FROM:\s*/i, '');
        if (verb === 'RCPT') current.to.push(line.replace(/^RCPT TO:\s*/i, ''));
        if (verb === 'DATA') inData = true;
        if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write(verb === 'EHLO' || verb === 'HELO' ? '250 sink\r\n' : verb === 'DATA' ? '354 go on\r\n' : '250 ok\r\n');
      }
    });
  });
  return {
    messages,
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))),
    close: () => server.close(),
  };
}

const missing = !existsSync(join(SAMPLES, 'alert_file.sh.sample')) ? 'pacemaker-common' : !existsSync(MSMTP) ? 'msmtp' : undefined;

test('a real agent\'s group placement runs Pacemaker\'s file and SMTP samples unchanged, and a webhook', { timeout: 300_000, skip: missing ? `apt-get install ${missing}` : false }, async (t) => {
  const lab = await Lab.create();
  const client = await testClient();
  const cluster = uniqueName('alerts');
  const sink = smtpSink();
  const hooks: Record<string, unknown>[] = [];
  const http = createHttpServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(text) as Record<string, unknown>);
      res.writeHead(200).end('ok');
    });
  });
  t.after(async () => {
    await lab.close();
    sink.close();
    http.close();
    await client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined);
    await closeTemporal();
  });
  const smtpPort = await sink.listen();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const hookPort = (http.address() as AddressInfo).port;

  // The SMTP sample's sendmail: msmtp, found first on the agent's PATH, with its own ~/.msmtprc.
  // The sample calls `sendmail -t -r SENDER`; msmtp has no -r (sendmail's synonym of -f): this
  // two-line shim passes it as -f, and is the only thing between the sample and msmtp.
  const mail = join(lab.dir, 'mail');
  await mkdir(join(mail, 'bin'), { recursive: true });
  await writeFile(join(mail, 'bin', 'sendmail'), `#!/bin/sh\nfor a do shift; if [ "$a" = -r ]; then set -- "$@" -f; else set -- "$@" "$a"; fi; done\nexec ${MSMTP} "$@"\n`);
  await chmod(join(mail, 'bin', 'sendmail'), 0o755);
  await writeFile(join(mail, '.msmtprc'), `account default\nhost 127.0.0.1\nport ${smtpPort}\nauth off\ntls off\nfrom hacluster@localhost\n`);
  await chmod(join(mail, '.msmtprc'), 0o600);
  const log = join(lab.dir, 'pacemaker-alerts.log');

  const port = await freePort();
  const groups = { web: [httpServiceYaml('httpd', port, { check: 'interval: 200ms, timeout: 150ms, rise: 1, fall: 1' })] };
  const config = await lab.writeOneNodeConfig('haoscar.yaml', { cluster, address: await temporalAddress(), groups });
  await writeFile(config, (await readFile(config, 'utf8')) + [
    'alerts:',
    `  - { name: file, path: ${SAMPLES}/alert_file.sh.sample, recipients: [${log}] }`,
    `  - name: mail`,
    `    path: ${SAMPLES}/alert_smtp.sh.sample`,
    `    recipients: [oncall@example.com]`,
    `    events: [failover-ended]`,
    `    env: { PATH: "${join(mail, 'bin')}:/usr/bin:/bin", HOME: "${mail}", email_sender: "hacluster@example.com" }`,
    `  - { name: hook, webhook: "http://127.0.0.1:${hookPort}/", events: [failover-ended] }`,
    '',
  ].join('\n'));
  void lab.startAgent(config, 'n1');

  // alert_file.sh.sample: "<time>: Resource operation 'failover' for 'web' on 'n1': ok", Pacemaker's default time format.
  const lines = await waitFor('the file sample logged the placement\'s end', async () => {
    const text = await readFile(log, 'utf8').catch(() => '');
    return text.includes("Resource operation 'failover' for 'web' on 'n1': ok") ? text.trim().split('\n') : undefined;
  }, 120_000, 200).catch(async (err: unknown) => {
    throw new Error(`${String(err)}\nagent log tail:\n${(await lab.agentLog('n1')).split('\n').slice(-30).join('\n')}`);
  });
  assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{6}: Resource operation 'failover' for 'web' on 'n1': ok$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{6}: Resource operation 'failover' for 'web' on '': pending$/.test(l)), lines.join('\n'));

  // alert_smtp.sh.sample through sendmail to the sink: the envelope, the subject, the variables as the body.
  const message = await waitFor('the SMTP sample\'s mail reached the sink', async () => sink.messages[0], 60_000, 200);
  assert.match(message.from, /<hacluster@example\.com>/);
  assert.deepEqual(message.to.map((r) => r.replace(/[<>]/g, '').replace(/\s.*$/, '')), ['oncall@example.com']);
  assert.match(message.data, /^Subject: \d\d:\d\d:\d\d\.\d{6} : Resource operation 'failover' for 'web' on 'n1': ok$/m);
  assert.match(message.data, /^CRM_alert_kind=resource$/m);
  assert.match(message.data, /^CRM_alert_haoscar_event=failover-ended$/m);

  // The webhook: the same fields as JSON.
  const hook = await waitFor('the webhook got the placement\'s end', async () => hooks[0], 60_000, 200);
  assert.equal(hook.kind, 'resource');
  assert.equal(hook.rsc, 'web');
  assert.equal(hook.node, 'n1');
  assert.equal(hook.desc, 'ok');
  assert.equal((hook.event as { cluster: string }).cluster, cluster);
});
