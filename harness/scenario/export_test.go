package scenario

// IdempotencyHeader exposes idempotencyHeader to the external tests.
func (o Options) IdempotencyHeader(s *Scenario) string { return o.idempotencyHeader(s) }
