/**
 * Version of the wire envelope. A receiver rejects (and counts) messages of any other version, so
 * mixed deployments fail loudly instead of misreading each other.
 */
export const PROTOCOL_VERSION = 2;
