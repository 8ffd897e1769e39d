package worker

import "testing"

func TestEntriesFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		room       int
		roomEvents int
		bounded    bool
		perEntry   float64
		want       int
	}{
		{"nothing seen yet: BATCH_SIZE", 200, 5000, true, 0, 200},
		{"single-event entries: BATCH_SIZE decides", 200, 5000, true, 1, 200},
		{"100-event entries: the event budget decides", 200, 5000, true, 100, 50},
		{"top-up with part of the budget used", 150, 2000, true, 100, 20},
		{"budget used up: still one entry", 150, 0, true, 100, 1},
		{"budget overrun: still one entry", 150, -300, true, 100, 1},
		{"entry larger than the budget: one entry", 200, 5000, true, 10000, 1},
		{"unbounded (BATCH_EVENTS=0)", 200, 0, false, 100, 200},
	}
	for _, c := range cases {
		if got := entriesFor(c.room, c.roomEvents, c.bounded, c.perEntry); got != c.want {
			t.Errorf("%s: entriesFor(%d, %d, %v, %v) = %d, want %d", c.name, c.room, c.roomEvents, c.bounded, c.perEntry, got, c.want)
		}
	}
}
