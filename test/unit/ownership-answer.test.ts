/**
 * Authenticated lease renewals (issue 9 item 9; src/auth/ownership-answer.ts): the workflow
 * worker's codec signs only the controller's marked answer, in the controller's workflow, and
 * nothing else; the agent accepts only a signed answer to its own question from the running run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload, type SerializationContext } from '@temporalio/common';
import { deriveMessageKey, messageKeyOf, newNonce } from '../../src/auth/messages.js';
import { checkOwnershipAnswer, createOwnershipAnswerCodec } from '../../src/auth/ownership-answer.js';
import { ANSWER_MAC_KEY, ANSWER_MARK, ANSWER_MARK_KEY, ownershipAnswerPayload, type OwnershipAnswer } from '../../workflows/ownership-answer.js';
import { controllerWorkflowId, type Ownership } from '../../workflows/shared.js';

const KEY = deriveMessageKey(randomBytes(32));
const CLUSTER = 'c1';
const RUN = 'run-1';
const codec = createOwnershipAnswerCodec({ cluster: CLUSTER, key: KEY });
const controllerContext: SerializationContext = { type: 'workflow', namespace: 'default', workflowId: controllerWorkflowId(CLUSTER) };

function ownership(owner: string, epoch: number): Ownership {
  return { cluster: CLUSTER, nodes: {}, falseAlarms: [], reverify: {}, groups: { web: { owner, epoch, state: 'running', since: 0, renewable: true } } };
}

function answer(nonce: string, over: Partial<OwnershipAnswer> = {}): OwnershipAnswer {
  return { kind: ANSWER_MARK, cluster: CLUSTER, workflowId: controllerWorkflowId(CLUSTER), runId: RUN, nonce, ownership: ownership('n1', 5), ...over };
}

/** The query handler's payload for `a`, through the worker's codec in `context`. */
async function signed(a: OwnershipAnswer, ...context: [SerializationContext | undefined] | []): Promise<Payload> {
  const ctx = context.length === 0 ? controllerContext : context[0];
  const [out] = await codec.encode([ownershipAnswerPayload(a).payload], ctx);
  return out!;
}

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

describe('ownership answer codec and check', () => {
  it('accepts the worker\'s signed answer to this question from the running run', async () => {
    const nonce = newNonce();
    const p = await signed(answer(nonce));
    assert.equal(text(p.metadata?.[ANSWER_MARK_KEY]), ANSWER_MARK);
    assert.ok(text(p.metadata?.[ANSWER_MAC_KEY])?.match(/^[A-Za-z0-9_-]{43}$/), 'a MAC in the metadata');
    const verdict = checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: RUN }, p);
    assert.deepEqual(verdict, { ok: true, ownership: ownership('n1', 5), signedWith: KEY.bytes });
    // The payload is still the plain JSON a client without the key decodes.
    assert.equal((defaultPayloadConverter.fromPayload(p) as OwnershipAnswer).ownership.groups.web?.owner, 'n1');
  });

  it('during a secret rotation: an answer signed with an accepted secret verifies, and says which (the worker\'s signing key)', async () => {
    const [old, fresh] = [randomBytes(32), randomBytes(32)];
    const worker = deriveMessageKey(old, [fresh]);
    const node = deriveMessageKey(fresh, [old]);
    const nonce = newNonce();
    const [p] = await createOwnershipAnswerCodec({ cluster: CLUSTER, key: worker }).encode([ownershipAnswerPayload(answer(nonce)).payload], controllerContext);
    const verdict = checkOwnershipAnswer(node, { cluster: CLUSTER, nonce, runId: RUN }, p);
    assert.ok(verdict.ok);
    assert.ok(verdict.signedWith.equals(messageKeyOf(old)), 'signed under the old secret, which the node still accepts');
    // The worker's keyring moves on (SIGHUP): the same codec signs under the new secret from then on.
    worker.update(fresh, [old]);
    const [q] = await createOwnershipAnswerCodec({ cluster: CLUSTER, key: worker }).encode([ownershipAnswerPayload(answer(nonce)).payload], controllerContext);
    const again = checkOwnershipAnswer(deriveMessageKey(fresh), { cluster: CLUSTER, nonce, runId: RUN }, q);
    assert.ok(again.ok && again.signedWith.equals(messageKeyOf(fresh)));
    assert.equal(checkOwnershipAnswer(deriveMessageKey(fresh), { cluster: CLUSTER, nonce, runId: RUN }, p).ok, false, 'the old secret\'s answer, once it is dropped');
  });

  it('refuses a tampered answer, another nonce, another run, another key and another cluster', async () => {
    const nonce = newNonce();
    const p = await signed(answer(nonce));
    const tampered: Payload = { ...p, data: Buffer.from(text(p.data)!.replace('"owner":"n1"', '"owner":"n2"')) };
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: RUN }, tampered)), /MAC does not verify/);
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce: newNonce(), runId: RUN }, p)), /another question .* replayed/);
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: 'run-2' }, p)), /controller run run-1, not the running one \(run-2\)/);
    assert.equal((checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: 'run-2' }, p) as { otherRun?: true }).otherRun, true, 'told apart: the link asks that run again');
    assert.match(bad(checkOwnershipAnswer(deriveMessageKey(randomBytes(32)), { cluster: CLUSTER, nonce, runId: RUN }, p)), /MAC does not verify/);
    // Signed for cluster c1's controller: not an answer for c2's.
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: 'c2', nonce, runId: RUN }, p)), /MAC does not verify/);
  });

  it('refuses an answer without a MAC, an unmarked one (an older worker) and none', async () => {
    const nonce = newNonce();
    const unsigned = ownershipAnswerPayload(answer(nonce)).payload;
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: RUN }, unsigned)), /carries no MAC/);
    const plain = defaultPayloadConverter.toPayload(ownership('n1', 5));
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: RUN }, plain)), /not a renewal answer .* upgrade `haoscar worker` first/);
    assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: RUN }, undefined)), /no result/);
  });

  it('signs nothing outside the controller\'s own workflow: another workflow ID, an activity, no context', async () => {
    const nonce = newNonce();
    const contexts: (SerializationContext | undefined)[] = [
      { type: 'workflow', namespace: 'default', workflowId: 'failover/c1/web' },
      { type: 'workflow', namespace: 'default', workflowId: controllerWorkflowId('c2') },
      { type: 'activity', namespace: 'default', workflowId: controllerWorkflowId(CLUSTER), isLocal: true },
      undefined,
    ];
    for (const context of contexts) {
      const p = await signed(answer(nonce), context);
      assert.equal(p.metadata?.[ANSWER_MAC_KEY], undefined, `no MAC in ${JSON.stringify(context)}`);
      assert.equal(p.metadata?.[ANSWER_MARK_KEY], undefined, 'and no mark');
      assert.match(bad(checkOwnershipAnswer(KEY, { cluster: CLUSTER, nonce, runId: RUN }, p)), /not a renewal answer/);
    }
  });

  it('signs a marked payload only when its content is this cluster\'s controller answer', async () => {
    const nonce = newNonce();
    for (const a of [answer(nonce, { cluster: 'c2' }), answer(nonce, { workflowId: 'failover/c1/web' }), { ...answer(nonce), kind: 'other' } as unknown as OwnershipAnswer]) {
      const p = await signed(a);
      assert.equal(p.metadata?.[ANSWER_MAC_KEY], undefined, `not signed: ${JSON.stringify({ ...a, ownership: undefined })}`);
    }
    const notJson: Payload = { metadata: { encoding: Buffer.from('binary/plain'), [ANSWER_MARK_KEY]: Buffer.from(ANSWER_MARK) }, data: Buffer.from('x') };
    assert.equal((await codec.encode([notJson], controllerContext))[0]!.metadata?.[ANSWER_MAC_KEY], undefined);
  });

  it('passes every other payload unchanged, both ways', async () => {
    const others = [defaultPayloadConverter.toPayload({ cluster: CLUSTER, groups: {} }), defaultPayloadConverter.toPayload('x'), defaultPayloadConverter.toPayload(undefined)];
    const encoded = await codec.encode(others, controllerContext);
    const decoded = await codec.decode(others, controllerContext);
    others.forEach((p, i) => {
      assert.equal(encoded[i], p, 'encode: the same payload');
      assert.equal(decoded[i], p, 'decode: the same payload');
    });
  });

  it('strips the mark and any MAC from what it decodes, so a payload that came in can never leave signed', async () => {
    // An impostor's activity failure carrying a marked answer with the agent's nonce: workflow code
    // may pass a failure on as it was received (its payloads included).
    const nonce = newNonce();
    const injected = { ...ownershipAnswerPayload(answer(nonce)).payload };
    injected.metadata = { ...injected.metadata, [ANSWER_MAC_KEY]: Buffer.from('A'.repeat(43)) };
    const [decoded] = await codec.decode([injected], controllerContext);
    assert.equal(decoded!.metadata?.[ANSWER_MARK_KEY], undefined);
    assert.equal(decoded!.metadata?.[ANSWER_MAC_KEY], undefined);
    assert.deepEqual(decoded!.data, injected.data, 'the content is kept');
    const [reEncoded] = await codec.encode([decoded!], controllerContext);
    assert.equal(reEncoded!.metadata?.[ANSWER_MAC_KEY], undefined, 'passed on, it is not signed');
  });
});

function bad(v: ReturnType<typeof checkOwnershipAnswer>): string {
  assert.equal(v.ok, false, 'refused');
  return v.ok ? '' : v.why;
}
