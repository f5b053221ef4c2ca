//! ElastiCache Redis (filled in with the analytics-api stack).
