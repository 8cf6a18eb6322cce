/** The heartbeat subsystem's public API (see docs/heartbeat.md). */
export { CONFIG_MISMATCH_LOG_EVERY_MS, Heartbeat, HeartbeatStartError, HEARTBEAT_REJECT_REASONS, LOG_EVERY_MS } from './heartbeat.js';
export type { HeartbeatEdge, HeartbeatLinkStatus, HeartbeatOptions, HeartbeatPeerStatus, HeartbeatRejectReason, HeartbeatStats } from './heartbeat.js';
export { judgeFreshness, newNonce } from './challenge.js';
export type { Freshness, FreshnessInput, FreshnessWhy } from './challenge.js';
export {
  BASE_PROTOCOL_VERSION, CONFIG_DIGEST_PATTERN, decodePacket, encodePacket, HeartbeatPacketError, LATEST_PROTOCOL_VERSION, MAX_ADVERTISED_VERSIONS, MAX_PACKET_BYTES,
  NONCE_PATTERN, PROTOCOL_VERSIONS,
} from './packet.js';
export type { DecodeFailureReason, DecodeResult, GroupRunState, HeartbeatPacket, HeartbeatView, ProtocolVersion } from './packet.js';
export { planVersion, planVersionOrFallback, VersionNegotiator } from './negotiation.js';
export type { PeerProtocol, VersionChange, VersionPlan } from './negotiation.js';
export { PeerTracker } from './peers.js';
export type { PacketOrigin, PeerEdge, PeerState, PeerStatus } from './peers.js';
export { checkReplay, ReplayGuard, REPLAY_WINDOW } from './replay.js';
export type { ReplayVerdict, ReplayWindow } from './replay.js';
export { HeartbeatSecretError, loadClusterSecrets, loadHeartbeatSecret, MIN_SECRET_BYTES, secretKeyId } from './secret.js';
export type { ClusterSecrets } from './secret.js';
export { heartbeatStateFile, HeartbeatStateError, HeartbeatStateStore, nextIncarnation, parseHeartbeatState } from './state.js';
export type { HeartbeatState } from './state.js';
