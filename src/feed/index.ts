export { FeedServer, FeedStartError, isLoopback, type FeedCounters, type FeedOptions, type Logger } from './server.js';
export { CLOSE_CODES, EVENT_TYPES, FEED_PATH, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from './protocol.js';
