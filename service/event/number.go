package event

// Numbers must print small. PostgreSQL stores a JSON number compactly but
// prints it in full on every read: 1e131071 is 8 bytes in a request and
// 131,072 characters in each /events answer. So a payload number is
// accepted only when PostgreSQL prints it with at most
// Limits.MaxNumberIntDigits digits before the decimal point (default 40:
// |x| < 1e40, which holds every 128-bit integer) and at most
// Limits.MaxNumberFracDigits after it (default 40; PostgreSQL keeps the
// decimals as sent, so 1.50 prints as 1.50, and 1e-5 as 0.00001). A number
// then prints in at most 82 characters. Doubles near the float64 extremes
// (1e300, 5e-324) are refused: send them as strings.
//
// The limits cannot exceed what PostgreSQL numeric stores at all:
//
// PostgreSQL numeric limits (jsonb stores every JSON number as numeric, and
// numeric_in applies exactly these checks; see set_var_from_str and
// make_result in src/backend/utils/adt/numeric.c, PostgreSQL 12+):
//
//   - the exponent magnitude must stay below PG_INT32_MAX/2 = 1073741823
//     (PostgreSQL 16+ rejects > 1073741823, 12..15 reject >= 1073741823; we
//     use the stricter form);
//   - the display scale dscale = max(0, digitsAfterPoint - exponent) must be
//     <= 16383 (14-bit field). This also bounds tiny values: 1e-16383 is ok,
//     1e-16384 and 0.000...0 with 16384 fraction digits are not;
//   - for a non-zero value, the decimal position of the most significant
//     non-zero digit, dw (0 = units digit), must be <= 131071, i.e. at most
//     131072 digits before the decimal point (the base-10000 weight is an
//     int16: floor(dw/4) <= 32767). 1e131071 is ok, 1e131072 is not.
//     Leading zeros of the mantissa do not count (PostgreSQL strips them).
const (
	pgMaxExponentAbs = 1073741823 - 1 // |exponent| must be <= this
	pgMaxDScale      = 16383
	pgMaxDWeight     = 131071
)

// Default printed-number limits (see above).
const (
	DefaultMaxNumberIntDigits  = 40
	DefaultMaxNumberFracDigits = 40
)

// scanNumberValid scans the (syntactically valid) JSON number at d[i] and
// returns its end and whether it prints within maxInt digits before and
// maxFrac after the decimal point (maxInt <= pgMaxDWeight+1, maxFrac <=
// pgMaxDScale, so PostgreSQL can store it).
func scanNumberValid(d []byte, i, maxInt, maxFrac int) (end int, fits bool) {
	if d[i] == '-' {
		i++
	}
	intStart := i
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(d) && d[i] == '.' {
		i++
		fracStart = i
		for i < len(d) && isDigit(d[i]) {
			i++
		}
		fracEnd = i
	}
	if i >= len(d) || (d[i] != 'e' && d[i] != 'E') {
		// No exponent: dscale = number of fraction digits; JSON forbids
		// leading zeros, so the integer digit count is exact.
		if fracEnd-fracStart <= maxFrac && intEnd-intStart <= maxInt {
			return i, true
		}
		return i, numericFits(d[intStart:intEnd], d[fracStart:fracEnd], 0, maxInt, maxFrac)
	}
	i++
	neg := false
	if d[i] == '+' {
		i++
	} else if d[i] == '-' {
		neg = true
		i++
	}
	var exp int64
	for i < len(d) && isDigit(d[i]) {
		if exp <= pgMaxExponentAbs { // saturate just above the limit
			exp = exp*10 + int64(d[i]-'0')
		}
		i++
	}
	if exp > pgMaxExponentAbs {
		return i, false
	}
	if neg {
		exp = -exp
	}
	return i, numericFits(d[intStart:intEnd], d[fracStart:fracEnd], exp, maxInt, maxFrac)
}

// numericFits applies the rule (see above) to a number with integer digits
// intDigits, fraction digits fracDigits and decimal exponent exp (|exp| <=
// pgMaxExponentAbs): the display scale must be <= maxFrac and the decimal
// weight of the leading digit < maxInt.
func numericFits(intDigits, fracDigits []byte, exp int64, maxInt, maxFrac int) bool {
	dscale := int64(len(fracDigits)) - exp
	if dscale > int64(maxFrac) {
		return false
	}
	var dw int64
	k := 0
	for k < len(intDigits) && intDigits[k] == '0' {
		k++
	}
	if k < len(intDigits) {
		dw = int64(len(intDigits)-1-k) + exp
	} else {
		k = 0
		for k < len(fracDigits) && fracDigits[k] == '0' {
			k++
		}
		if k == len(fracDigits) {
			return true // zero: weight is normalised to 0
		}
		dw = -int64(k+1) + exp
	}
	return dw < int64(maxInt)
}
