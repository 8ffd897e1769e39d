//go:build plantedbugs

package planted

// Enabled is true in builds with the plantedbugs tag.
const Enabled = true
