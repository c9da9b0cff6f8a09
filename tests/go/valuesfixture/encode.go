package main

// The reference encoder: renders a Go value as JSON with the conventions the capture's
// decoder follows when it reads the same value from memory (see tests/go/README.md).
// It reads unexported fields with reflect's typed getters (Int, String, ...), which
// work where Interface() would panic.

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Capture budgets: a value larger than these is cut by the capture, so the fixture
// lists it under "cut" and tests compare only a prefix.
const (
	budgetStringBytes = 512  // string bytes
	budgetSliceBytes  = 512  // slice and array elements, in bytes
	budgetMapBytes    = 2048 // map entries: len * (key size + value size)
	budgetPointers    = 8    // pointers followed from the variable
)

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
)

// closedChans holds the channels this program closed: reflect cannot tell whether a
// channel is closed without receiving from it.
var closedChans = map[uintptr]bool{}

func closeAndRemember[T any](ch chan T) {
	closedChans[reflect.ValueOf(ch).Pointer()] = true
	close(ch)
}

// encoder renders one variable; cut becomes true when any part of it exceeds a budget.
type encoder struct {
	cut  bool
	path map[uintptr]bool // pointers on the current path, to stop at cycles
}

func encodeVar[T any](v T) (any, bool) {
	e := &encoder{path: map[uintptr]bool{}}
	out := e.value(reflect.ValueOf(&v).Elem(), 0)
	return out, e.cut
}

func (e *encoder) value(v reflect.Value, depth int) any {
	t := v.Type()
	if t == timeType {
		return e.timeValue(v).UTC().Format(time.RFC3339Nano)
	}
	if t == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32:
		return floatValue(v.Float(), 32)
	case reflect.Float64:
		return floatValue(v.Float(), 64)
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		bits := 64
		if v.Kind() == reflect.Complex64 {
			bits = 32
		}
		return []any{floatValue(real(c), bits), floatValue(imag(c), bits)}
	case reflect.String:
		s := v.String()
		if len(s) > budgetStringBytes {
			e.cut = true
		}
		return validUTF8(s)
	case reflect.UnsafePointer:
		return uint64(v.Pointer())
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if depth >= budgetPointers {
			e.cut = true
		}
		p := v.Pointer()
		if e.path[p] {
			e.cut = true
			return map[string]any{"$cycle": fmt.Sprintf("%#x", p)}
		}
		e.path[p] = true
		out := e.value(v.Elem(), depth+1)
		delete(e.path, p)
		return out
	case reflect.Struct:
		out := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			out[t.Field(i).Name] = e.value(v.Field(i), depth)
		}
		return out
	case reflect.Array, reflect.Slice:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if uintptr(v.Len())*t.Elem().Size() > budgetSliceBytes {
			e.cut = true
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = e.value(v.Index(i), depth)
		}
		return out
	case reflect.Map:
		return e.mapValue(v, depth)
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		inner := v.Elem()
		return map[string]any{"$type": inner.Type().String(), "$value": e.value(inner, depth)}
	case reflect.Chan:
		if v.IsNil() {
			return nil
		}
		return map[string]any{"len": v.Len(), "cap": v.Cap(), "closed": closedChans[v.Pointer()]}
	case reflect.Func:
		if v.IsNil() {
			return nil
		}
		return runtime.FuncForPC(v.Pointer()).Name()
	}
	panic("valuesfixture: no encoding for " + t.String())
}

func (e *encoder) mapValue(v reflect.Value, depth int) any {
	if v.IsNil() {
		return nil
	}
	t := v.Type()
	if uintptr(v.Len())*(t.Key().Size()+t.Elem().Size()) > budgetMapBytes {
		e.cut = true
	}
	if t.Key().Kind() == reflect.String {
		out := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			out[validUTF8(it.Key().String())] = e.value(it.Value(), depth)
		}
		return out
	}
	type pair struct {
		key  string
		item []any
	}
	var pairs []pair
	for it := v.MapRange(); it.Next(); {
		k := e.value(it.Key(), depth)
		text, err := json.Marshal(k)
		if err != nil {
			panic(err)
		}
		pairs = append(pairs, pair{string(text), []any{k, e.value(it.Value(), depth)}})
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].key < pairs[j].key })
	out := make([]any, len(pairs))
	for i, p := range pairs {
		out[i] = p.item
	}
	return out
}

// timeValue gets a time.Time even out of an unexported field, where Interface panics.
func (e *encoder) timeValue(v reflect.Value) time.Time {
	if v.CanInterface() {
		return v.Interface().(time.Time)
	}
	if v.CanAddr() {
		return *(*time.Time)(unsafe.Pointer(v.UnsafeAddr()))
	}
	panic("valuesfixture: unreadable time.Time")
}

// floatValue is the number, or "NaN", "+Inf", "-Inf" which JSON cannot spell. A
// float32 stays a float32 so that it prints with its own shortest digits.
func floatValue(f float64, bits int) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case bits == 32:
		return float32(f)
	}
	return f
}

// validUTF8 replaces each byte that is not part of valid UTF-8 with U+FFFD (one per
// byte, as encoding/json does, not one per run as strings.ToValidUTF8 does).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
