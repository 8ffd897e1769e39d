// Package compose holds the smoke test of the repository's compose.yml: it
// builds the images, brings the stack up with whichever Compose CLI the
// machine has (`docker compose` or `docker-compose`), publishes events,
// restarts the service and checks that nothing was lost. It has no code of
// its own.
package compose
