/** The heartbeat subsystem's public API (see docs/heartbeat.md). */
export { Heartbeat, HeartbeatStartError, HEARTBEAT_REJECT_REASONS, LOG_EVERY_MS } from './heartbeat.js';
export type { HeartbeatEdge, HeartbeatLinkStatus, HeartbeatOptions, HeartbeatPeerStatus, HeartbeatRejectReason, HeartbeatStats } from './heartbeat.js';
export { judgeFreshness, newNonce } from './challenge.js';
export type { Freshness, FreshnessInput, FreshnessWhy } from './challenge.js';
export { decodePacket, encodePacket, HeartbeatPacketError, MAX_PACKET_BYTES, NONCE_PATTERN, PROTOCOL_VERSION } from './packet.js';
export type { DecodeFailureReason, DecodeResult, GroupRunState, HeartbeatPacket, HeartbeatView } from './packet.js';
export { PeerTracker } from './peers.js';
export type { PacketOrigin, PeerEdge, PeerState, PeerStatus } from './peers.js';
export { checkReplay, ReplayGuard, REPLAY_WINDOW } from './replay.js';
export type { ReplayVerdict, ReplayWindow } from './replay.js';
export { HeartbeatSecretError, loadHeartbeatSecret, MIN_SECRET_BYTES } from './secret.js';
export { heartbeatStateFile, HeartbeatStateError, HeartbeatStateStore, nextIncarnation, parseHeartbeatState } from './state.js';
export type { HeartbeatState } from './state.js';
