"""Events flowing from workers to the web tier (journal pull; webhooks and SSE later)."""
