package event

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func TestHasSpecial8(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	r := rand.New(rand.NewPCG(1, 2))
	var b [8]byte
	for iter := 0; iter < 20000; iter++ {
		// Random plain bytes (including >= 0x80) with each byte value tried
		// at a random position.
		for k := range b {
			for {
				b[k] = byte(r.IntN(256))
				if !special(b[k]) {
					break
				}
			}
		}
		if hasSpecial8(binary.LittleEndian.Uint64(b[:])) {
			t.Fatalf("false positive for % x", b)
		}
		c := byte(iter % 256)
		b[r.IntN(8)] = c
		want := special(c)
		if got := hasSpecial8(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("% x: got %v want %v", b, got, want)
		}
	}
}

func TestScanStringSpecialFlag(t *testing.T) {
	for _, tc := range []struct {
		in      string
		special bool
	}{
		{`"abc"`, false},
		{`"abcdefghijklmnopqrstuvwxyz0123456789"`, false},
		{`"abcdefghijklmnop\"qrstuvwxyz"`, true},
		{`"abcdefghijklmnopqrstuvwxyzé"`, true},
		{`"éabcdefghijklmnopqrstuvwxyz"`, true},
		{"\"abcdefg\xff\"", true},
		{`"\u0041"`, true},
	} {
		var special bool
		end, err := scanString([]byte(tc.in), 0, &special)
		if err != nil || end != len(tc.in) || special != tc.special {
			t.Errorf("%s: end %d err %v special %v", tc.in, end, err, special)
		}
	}
}
