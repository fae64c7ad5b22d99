//! tutela-audit: the RFC 9162-style Merkle log (built with the vault, issue 3).
