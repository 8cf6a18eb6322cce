/**
 * The MACs of messages through Temporal (src/auth/messages.ts): each bound field changes the MAC,
 * field order does not, and the key is not the heartbeat secret itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { canonicalJson, controllerReportMac, healGaveUpMac, verifyHealGaveUp, type HealGaveUpBinding, controllerUpdateMac, deriveMessageKey, verifyControllerReport, type ControllerReportBinding, newNonce, orderMac, pingAnswerMac, verifyControllerUpdate, verifyOrder, verifyPingAnswer, withoutAuth, withoutMac, type ControllerUpdateBinding, type OrderBinding, type PingBinding } from '../../src/auth/messages.js';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const key = deriveMessageKey(secret);

test('canonical JSON: object keys sorted, undefined members left out, arrays kept in order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: 'x' }, u: undefined }), '{"a":{"c":"x","d":[2,1]},"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.equal(canonicalJson([undefined, null]), '[null,null]');
});

test('the message key is derived: not the secret, and not what keys heartbeat packets', () => {
  assert.notDeepEqual(key.bytes, secret);
  assert.equal(key.bytes.length, 32);
  assert.deepEqual(deriveMessageKey(secret).bytes, key.bytes, 'the same secret gives the same key on every node');
  assert.notDeepEqual(deriveMessageKey(Buffer.from('another secret, 32 bytes long...')).bytes, key.bytes);
});

test('nonces are fresh: 128 bits, never the same twice in 1000', () => {
  const seen = new Set(Array.from({ length: 1000 }, () => newNonce()));
  assert.equal(seen.size, 1000);
  assert.equal(Buffer.from([...seen][0]!, 'base64url').length, 16);
});

test('a ping answer verifies only for its node, nonce, workflow and content', () => {
  const b: PingBinding = { cluster: 'c', node: 'n1', nonce: 'N', workflowId: 'wf', answer: { node: 'n1', at: 5, holds: { epoch: 3, state: 'running' } } };
  const mac = pingAnswerMac(key, b);
  assert.ok(verifyPingAnswer(key, b, mac));
  assert.ok(verifyPingAnswer(key, { ...b, answer: { holds: { state: 'running', epoch: 3 }, at: 5, node: 'n1' } }, mac), 'field order does not matter');
  for (const changed of [{ cluster: 'd' }, { node: 'n2' }, { nonce: 'M' }, { workflowId: 'wf2' }, { answer: { node: 'n1', at: 5 } }, { answer: { node: 'n1', at: 5, holds: { epoch: 4, state: 'running' } } }]) {
    assert.equal(verifyPingAnswer(key, { ...b, ...changed }, mac), false, `changed ${JSON.stringify(changed)}`);
  }
  assert.equal(verifyPingAnswer(deriveMessageKey(Buffer.from('another secret, 32 bytes long...')), b, mac), false, 'another secret');
  for (const bad of [undefined, 42, '', mac.slice(1), `${mac}A`]) assert.equal(verifyPingAnswer(key, b, bad), false, `MAC ${String(bad)}`);
});

test('an order verifies only for its node, action, workflow run and content (epoch included)', () => {
  const b: OrderBinding = { cluster: 'c', node: 'n2', action: 'startResource', workflowId: 'wf', runId: 'run', order: { group: 'web', resource: 'vip', epoch: 7 } };
  const mac = orderMac(key, b);
  assert.ok(verifyOrder(key, b, mac));
  for (const changed of [{ node: 'n1' }, { action: 'stopResource' }, { workflowId: 'x' }, { runId: 'run2' }, { order: { group: 'web', resource: 'vip', epoch: 8 } }, { order: { group: 'web', resource: 'ip', epoch: 7 } }]) {
    assert.equal(verifyOrder(key, { ...b, ...changed }, mac), false, `changed ${JSON.stringify(changed)}`);
  }
  // A ping answer's MAC is never an order's, even over the same fields.
  assert.notEqual(pingAnswerMac(key, { cluster: 'c', node: 'n2', nonce: 'startResource', workflowId: 'wf', answer: b.order }), mac);
});

test('the MAC is HMAC-SHA256 under the derived key, never under the secret itself', () => {
  const b: OrderBinding = { cluster: 'c', node: 'n2', action: 'fence', workflowId: 'wf', runId: 'run', order: { victim: 'n1' } };
  const underSecret = createHmac('sha256', secret).update(canonicalJson(['haoscar', 'order', 'c', 'n2', 'fence', 'wf', 'run', { victim: 'n1' }])).digest('base64url');
  assert.equal(verifyOrder(key, b, underSecret), false);
  assert.deepEqual(withoutMac({ victim: 'n1', mac: 'm' }), { victim: 'n1' });
});

test('an update to the controller verifies only for its controller, update name and ID, sending run and request (epoch included)', () => {
  const b: ControllerUpdateBinding = { cluster: 'c', controllerId: 'controller/c', update: 'claimGroup', updateId: 'failover/c/web/run/3/claimGroup', runId: 'run', request: { group: 'web', workflowId: 'failover/c/web', expectEpoch: 4, owner: null } };
  const mac = controllerUpdateMac(key, b);
  assert.ok(verifyControllerUpdate(key, b, mac));
  for (const changed of [{ cluster: 'd' }, { controllerId: 'controller/d' }, { update: 'endOperation' }, { updateId: 'other' }, { runId: 'run2' }, { runId: undefined },
    { request: { group: 'web', workflowId: 'failover/c/web', expectEpoch: 5, owner: null } }, { request: { group: 'web', workflowId: 'intruder', expectEpoch: 4, owner: null } }, { request: { group: 'web', workflowId: 'failover/c/web', expectEpoch: 4, owner: 'n2' } }]) {
    assert.equal(verifyControllerUpdate(key, { ...b, ...changed }, mac), false, `changed ${JSON.stringify(changed)}`);
  }
  assert.equal(verifyControllerUpdate(deriveMessageKey(Buffer.from('another secret, 32 bytes long...')), b, mac), false, 'another secret');
  // Never an order's or a ping answer's MAC over the same fields.
  assert.notEqual(orderMac(key, { cluster: 'c', node: 'controller/c', action: 'claimGroup', workflowId: b.updateId, runId: 'run', order: b.request }), mac);
  assert.deepEqual(withoutAuth({ node: 'n1', auth: { mac: 'm' } }), { node: 'n1' });
});

test('an agent\'s report to the controller verifies only for its controller, signal, sender, incarnation, counter and content', () => {
  const b: ControllerReportBinding = { cluster: 'c', controllerId: 'controller/c', signal: 'nodeEdge', sender: 'n2', incarnation: 1796564425326, counter: 3, report: { node: 'n1', to: 'suspect', reporter: 'n2', at: 5, detail: 'silent' } };
  const mac = controllerReportMac(key, b);
  assert.ok(verifyControllerReport(key, b, mac));
  assert.ok(verifyControllerReport(key, { ...b, report: { detail: 'silent', at: 5, reporter: 'n2', to: 'suspect', node: 'n1' } }, mac), 'field order does not matter');
  for (const changed of [{ cluster: 'd' }, { controllerId: 'controller/d' }, { signal: 'groupLost' }, { sender: 'n1' }, { incarnation: 1796564425327 }, { counter: 4 },
    { report: { node: 'n1', to: 'up', reporter: 'n2', at: 5, detail: 'silent' } }, { report: { node: 'n2', to: 'suspect', reporter: 'n2', at: 5, detail: 'silent' } }]) {
    assert.equal(verifyControllerReport(key, { ...b, ...changed }, mac), false, `changed ${JSON.stringify(changed)}`);
  }
  assert.equal(verifyControllerReport(deriveMessageKey(Buffer.from('another secret, 32 bytes long...')), b, mac), false, 'another secret');
  assert.equal(verifyControllerReport(key, b, undefined), false, 'no MAC');
  // Never an update's MAC over the same fields.
  assert.notEqual(controllerUpdateMac(key, { cluster: 'c', controllerId: 'controller/c', update: 'nodeEdge', updateId: 'n2', runId: String(b.incarnation), request: b.report }), mac);
});

test('a heal\'s "gave up" report verifies only for its controller, heal and content; never as an agent\'s report', () => {
  const b: HealGaveUpBinding = { cluster: 'c', controllerId: 'controller/c', healId: 'heal/c/web/httpd', report: { group: 'web', resource: 'httpd', node: 'n1', at: 5, detail: 'failed again' } };
  const mac = healGaveUpMac(key, b);
  assert.ok(verifyHealGaveUp(key, b, mac));
  for (const changed of [{ cluster: 'd' }, { controllerId: 'controller/d' }, { healId: 'heal/c/web/db' }, { report: { ...(b.report as object), at: 6 } }, { report: { ...(b.report as object), node: 'n2' } }]) {
    assert.equal(verifyHealGaveUp(key, { ...b, ...changed }, mac), false, `changed ${JSON.stringify(changed)}`);
  }
  assert.equal(verifyHealGaveUp(key, b, undefined), false, 'no MAC');
  assert.notEqual(controllerReportMac(key, { cluster: 'c', controllerId: 'controller/c', signal: 'healGaveUp', sender: b.healId, incarnation: 5, counter: 1, report: b.report }), mac);
});

test('two secrets (a rotation): MACs are made under the first only; a MAC under an accepted one verifies only while it is accepted; a forged one never', () => {
  const oldSecret = secret;
  const newSecret = Buffer.from('the-new-cluster-secret-0123456789');
  const forger = deriveMessageKey(Buffer.from('not-the-cluster-secret-0123456789'));
  const ping: PingBinding = { cluster: 'c', node: 'n1', nonce: 'nonce', workflowId: 'wf', answer: { alive: true } };
  const order: OrderBinding = { cluster: 'c', node: 'n1', action: 'stopGroup', workflowId: 'wf', runId: 'run', order: { group: 'web', epoch: 3 } };
  const update: ControllerUpdateBinding = { cluster: 'c', controllerId: 'ctl', update: 'claimGroup', updateId: 'u1', runId: 'run', request: { group: 'web', expectEpoch: 3 } };
  const signedUnderOld = { ping: pingAnswerMac(deriveMessageKey(oldSecret), ping), order: orderMac(deriveMessageKey(oldSecret), order), update: controllerUpdateMac(deriveMessageKey(oldSecret), update) };
  const forged = { ping: pingAnswerMac(forger, ping), order: orderMac(forger, order), update: controllerUpdateMac(forger, update) };

  // Signing with the new secret, accepting the old too (a node in the middle of the rotation).
  const both = deriveMessageKey(newSecret, [oldSecret]);
  assert.equal(pingAnswerMac(both, ping), pingAnswerMac(deriveMessageKey(newSecret), ping), 'MACs are made under the signing secret only');
  assert.ok(verifyPingAnswer(both, ping, signedUnderOld.ping));
  assert.ok(verifyOrder(both, order, signedUnderOld.order));
  assert.ok(verifyControllerUpdate(both, update, signedUnderOld.update));
  assert.ok(verifyPingAnswer(both, ping, pingAnswerMac(deriveMessageKey(newSecret), ping)));
  // The old secret dropped: what it signed is refused.
  const newOnly = deriveMessageKey(newSecret);
  assert.equal(verifyPingAnswer(newOnly, ping, signedUnderOld.ping), false);
  assert.equal(verifyOrder(newOnly, order, signedUnderOld.order), false);
  assert.equal(verifyControllerUpdate(newOnly, update, signedUnderOld.update), false);
  // Forged: refused with one key or two; and a MAC under an accepted key is still bound to its message.
  for (const k of [both, newOnly]) {
    assert.equal(verifyPingAnswer(k, ping, forged.ping), false);
    assert.equal(verifyOrder(k, order, forged.order), false);
    assert.equal(verifyControllerUpdate(k, update, forged.update), false);
  }
  assert.equal(verifyOrder(both, { ...order, order: { group: 'web', epoch: 4 } }, signedUnderOld.order), false);
});
