package event

import "strconv"

// validatePayload validates the payload value at sp. Rules:
//
//   - it must be a JSON object (dict_type at [...,"payload"]);
//   - its raw size as sent (from '{' to '}' inclusive, whitespace included)
//     must be <= Limits.MaxPayloadBytes (payload_too_large at [...,"payload"];
//     the payload is then not inspected further);
//   - nesting depth <= Limits.MaxDepth, the payload object being level 1 and
//     each nested object/array adding one (json_depth at [...,"payload"],
//     reported once; content below the limit is not inspected);
//   - every string value and every key anywhere inside must be valid UTF-8,
//     free of \u0000 and of lone surrogate escapes (string_unicode; loc is the
//     path to the value, e.g. [...,"payload","a",0], or for a key the path to
//     it followed by "[key]" as pydantic does);
//   - every number must print small: at most Limits.MaxNumberIntDigits
//     digits before the decimal point and MaxNumberFracDigits after it, as
//     PostgreSQL prints it (number_range at its path; see number.go);
//   - top-level "message" is required and must be a string (missing /
//     string_type at [...,"payload","message"]); top-level "timestamp" is
//     required and must satisfy ParseTimestamp (missing / datetime_type /
//     datetime_parsing at [...,"payload","timestamp"]). Last duplicate wins.
//
// On success the compacted payload is appended to dc.pay.
func (dc *decoder) validatePayload(idx int, sp span, out *span) {
	if sp.s < 0 {
		dc.addErr(evLoc(idx, "payload"), msgMissing, TypeMissing)
		return
	}
	d := dc.d
	if d[sp.s] != '{' {
		dc.addErr(evLoc(idx, "payload"), msgDictType, TypeDictType)
		return
	}
	if n := sp.e - sp.s; n > dc.lim.MaxPayloadBytes {
		dc.addErr(evLoc(idx, "payload"), "Payload should be at most "+strconv.Itoa(dc.lim.MaxPayloadBytes)+
			" bytes, got "+strconv.Itoa(n), TypePayloadTooLarge)
		return
	}
	dc.evIdx = idx
	dc.path = dc.path[:0]
	dc.sawWS = false
	dc.depthErr = false
	dc.msg, dc.ts = noSpan, noSpan
	dc.walk(sp.s, 0)

	switch {
	case dc.msg.s < 0:
		dc.addErr(evLoc(idx, "payload", "message"), msgMissing, TypeMissing)
	case d[dc.msg.s] != '"':
		dc.addErr(evLoc(idx, "payload", "message"), msgStringType, TypeStringType)
	}
	dc.timestampField(dc.ts, true, idx)

	if dc.errs.Len() > 0 {
		return // the request is rejected anyway
	}
	start := len(dc.pay)
	if dc.sawWS {
		dc.pay = appendCompact(dc.pay, d[sp.s:sp.e])
	} else {
		dc.pay = append(dc.pay, d[sp.s:sp.e]...)
	}
	*out = span{start, len(dc.pay)}
}

// ws skips whitespace and remembers whether there was any.
func (dc *decoder) ws(i int) int {
	j := skipWS(dc.d, i)
	if j != i {
		dc.sawWS = true
	}
	return j
}

// addPayloadErr records an error at the current payload path; the location
// is built only when the error will be listed.
func (dc *decoder) addPayloadErr(msg, typ string, suffix ...any) {
	var loc []any
	if dc.errs.Listing() {
		loc = dc.payloadLoc(suffix...)
	}
	dc.addErr(loc, msg, typ)
}

// payloadLoc builds the error location of the current payload path (each
// key cut to MaxLocBytes).
func (dc *decoder) payloadLoc(suffix ...any) []any {
	loc := make([]any, 0, 4+len(dc.path)+len(suffix))
	loc = append(loc, "body", "events", dc.evIdx, "payload")
	for _, seg := range dc.path {
		if seg.ks < 0 {
			loc = append(loc, seg.idx)
		} else {
			loc = append(loc, lenientString(dc.d[seg.ks+1:seg.ke-1]))
		}
	}
	return append(loc, suffix...)
}

// walk validates the (syntactically valid) payload value at d[i], at nesting
// level depth (0 for the payload object's own value position), and returns
// the index just past it.
func (dc *decoder) walk(i, depth int) int {
	d := dc.d
	switch d[i] {
	case '{':
		if depth >= dc.lim.MaxDepth {
			dc.tooDeep()
			return skipValueValid(d, i)
		}
		i = dc.ws(i + 1)
		if d[i] == '}' {
			return i + 1
		}
		for {
			ks := i
			ke := skipStringValid(d, i)
			key := d[ks+1 : ke-1]
			dc.path = append(dc.path, pathSeg{ks: ks, ke: ke})
			if !dc.plain {
				if p := checkString(key); p != probNone {
					dc.addPayloadErr(p.msg(), TypeStringUnicode, "[key]")
				}
			}
			i = dc.ws(dc.ws(ke) + 1) // past ':'
			vs := i
			i = dc.walk(i, depth+1)
			dc.path = dc.path[:len(dc.path)-1]
			if depth == 0 {
				switch payloadKey(key) {
				case pkMessage:
					dc.msg = span{vs, i}
				case pkTimestamp:
					dc.ts = span{vs, i}
				}
			}
			i = dc.ws(i)
			if d[i] != ',' {
				return i + 1 // '}'
			}
			i = dc.ws(i + 1)
		}
	case '[':
		if depth >= dc.lim.MaxDepth {
			dc.tooDeep()
			return skipValueValid(d, i)
		}
		i = dc.ws(i + 1)
		if d[i] == ']' {
			return i + 1
		}
		for n := 0; ; n++ {
			dc.path = append(dc.path, pathSeg{ks: -1, idx: n})
			i = dc.elem(dc, i, depth+1)
			dc.path = dc.path[:len(dc.path)-1]
			i = dc.ws(i)
			if d[i] != ',' {
				return i + 1 // ']'
			}
			i = dc.ws(i + 1)
		}
	case '"':
		e := skipStringValid(d, i)
		if !dc.plain {
			if p := checkString(d[i+1 : e-1]); p != probNone {
				dc.addPayloadErr(p.msg(), TypeStringUnicode)
			}
		}
		return e
	case 't', 'n':
		return i + 4
	case 'f':
		return i + 5
	default:
		e, fits := scanNumberValid(d, i, dc.lim.MaxNumberIntDigits, dc.lim.MaxNumberFracDigits)
		if !fits {
			dc.addPayloadErr(dc.lim.numberMsg(), TypeNumberRange)
		}
		return e
	}
}

func (dc *decoder) tooDeep() {
	dc.sawWS = true // the skipped part was not inspected for whitespace
	if dc.depthErr {
		return
	}
	dc.depthErr = true
	dc.addErr(evLoc(dc.evIdx, "payload"), "Payload should be nested at most "+strconv.Itoa(dc.lim.MaxDepth)+
		" levels deep", TypeJSONDepth)
}
