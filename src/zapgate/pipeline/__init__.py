"""The web tier's background loops, each with one lifecycle (`base.Loop`): the journal
puller, the webhook dispatcher, the outbound sender and the retention janitor.

`AppContext` builds them, starts them once the registry is migrated, and closes them
newest first. In the cluster topology this is where leases plug in: a loop will run its
work only while its web process holds the lease for it (a worker's journal, a webhook,
a session's outbound queue), so two web processes never do the same work twice."""
