package main

// Argo CD's way of running a health.lua; see the list at the top of main.go
// for the Argo CD function each piece follows.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// healthStatus has the JSON shape of gitops-engine's health.HealthStatus, so
// json.Unmarshal accepts and rejects exactly what Argo's does (field names
// match case-insensitively, a non-string status is a type error).
type healthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// Argo's messages, word for word: a caller may compare against them.
const (
	invalidHealthStatus = "Lua returned an invalid health status"
	incorrectReturnType = "expect %s output from Lua script, not %s"
)

func isValidHealthStatus(s string) bool {
	switch s {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
		return true
	}
	return false
}

func runHealthLua(obj map[string]any, script string, openLibs bool) (healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	// The same libraries, opened in the same order and the same way as Argo.
	// Re-opening "package" replaces package.loaded, and the safe os lib is
	// registered under the table library's name (already loaded, so it adds
	// nothing). The net effect, kept on purpose: with open libs the `os` and
	// `string` globals are the full libraries but require("os") yields the
	// safe subset and require("string") fails; without them there is no `os`
	// global at all, only require("os").
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return healthStatus{}, fmt.Errorf("opening Lua library %q: %w", lib.name, err)
		}
	}
	l.PreloadModule(lua.OsLibName, loadSafeOs)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)

	// Health scripts get no action parameters, but the global exists.
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", toLua(l, obj))

	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
		apiErr.StackTrace = ""
	}
	if err != nil {
		return healthStatus{}, err
	}
	return healthFromLua(l.Get(-1))
}

// healthFromLua: only the last returned value counts (l.Get(-1)); nil and
// tables that do not decode into a status give an empty status, not an error,
// and an unknown status becomes Unknown with Argo's fixed message.
func healthFromLua(ret lua.LValue) (healthStatus, error) {
	switch ret.Type() {
	case lua.LTTable:
	case lua.LTNil:
		return healthStatus{}, nil
	default:
		return healthStatus{}, fmt.Errorf(incorrectReturnType, "table", ret.Type().String())
	}
	data, err := luaToJSON(ret)
	if err != nil {
		return healthStatus{}, err
	}
	var hs healthStatus
	if err := json.Unmarshal(data, &hs); err != nil {
		// Argo means to catch "an empty table encodes as []", but its
		// errors.As matches every *json.UnmarshalTypeError (e.g. status = 1).
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return healthStatus{}, nil
		}
		return healthStatus{}, err
	}
	if !isValidHealthStatus(hs.Status) {
		return healthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return hs, nil
}

// toLua: types apimachinery and encoding/json do not produce become nil, and
// json.Number becomes a string, as in Argo.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item)) // Append drops nils, shifting later items down
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

// luaToJSON encodes as gopher-json does: a table is an array when its first
// key (in Next order) is a number, then every key must be 1, 2, 3...; an
// object when it is a string, then every key must be a string; an empty table
// is []. A table met twice, even without a cycle, is an error, and so are
// functions and other non-data values.
func luaToJSON(v lua.LValue) ([]byte, error) {
	plain, err := luaToPlain(v, map[*lua.LTable]bool{})
	if err != nil {
		return nil, err
	}
	return json.Marshal(plain)
}

func luaToPlain(v lua.LValue, seen map[*lua.LTable]bool) (any, error) {
	switch v := v.(type) {
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		return float64(v), nil // NaN and ±Inf fail in json.Marshal, as in gopher-json
	case lua.LString:
		return string(v), nil
	case *lua.LNilType:
		return nil, nil
	case *lua.LTable:
		if seen[v] {
			return nil, errors.New("cannot encode recursively nested tables to JSON")
		}
		seen[v] = true
		key, val := v.Next(lua.LNil)
		switch key.Type() {
		case lua.LTNil:
			return []any{}, nil
		case lua.LTNumber:
			arr := []any{}
			for want := lua.LNumber(1); key != lua.LNil; want++ {
				if key.Type() != lua.LTNumber {
					return nil, errors.New("cannot encode mixed or invalid key types")
				}
				if key != want {
					return nil, errors.New("cannot encode sparse array")
				}
				item, err := luaToPlain(val, seen)
				if err != nil {
					return nil, err
				}
				arr = append(arr, item)
				key, val = v.Next(key)
			}
			return arr, nil
		case lua.LTString:
			m := map[string]any{}
			for key != lua.LNil {
				if key.Type() != lua.LTString {
					return nil, errors.New("cannot encode mixed or invalid key types")
				}
				item, err := luaToPlain(val, seen)
				if err != nil {
					return nil, err
				}
				m[key.String()] = item
				key, val = v.Next(key)
			}
			return m, nil
		default:
			return nil, errors.New("cannot encode mixed or invalid key types")
		}
	}
	return nil, fmt.Errorf("cannot encode %s to JSON", v.Type().String())
}

// The safe os subset: time and date only, with oslib_safe.go's argument rules
// (os.time wants a table when given anything; os.date's second argument is
// read in local time even after a "!" prefix).
var safeOsFuncs = map[string]lua.LGFunction{"time": safeOsTime, "date": safeOsDate}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, safeOsFuncs))
	return 1
}

func loadSafeOs(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

func safeOsTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := l.CheckTable(1)
	intField := func(name string, def int) int {
		if n, ok := t.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	when := time.Date(intField("year", -1), time.Month(intField("month", -1)), intField("day", -1),
		intField("hour", 12), intField("min", 0), intField("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(when.Unix()))
	return 1
}

func safeOsDate(l *lua.LState) int {
	t := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
		if strings.HasPrefix(format, "!") {
			t = time.Now().UTC()
			format = strings.TrimLeft(format, "!")
		}
		if l.GetTop() >= 2 {
			t = time.Unix(l.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			tb := l.NewTable()
			for k, n := range map[string]int{
				"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(),
				"min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0,
			} {
				tb.RawSetString(k, lua.LNumber(n))
			}
			tb.RawSetString("isdst", lua.LFalse)
			l.Push(tb)
			return 1
		}
	}
	l.Push(lua.LString(strftime(t, format)))
	return 1
}

// gopher-lua's strftime subset (its own table, "%a" lower-case quirk included).
var strftimeLayouts = map[byte]string{
	'a': "mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'P': "pm", 'S': "05",
	'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			b.WriteByte(c)
			continue
		}
		i++
		switch d := format[i]; {
		case d == '%':
			b.WriteByte('%')
		case d == 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case strftimeLayouts[d] != "":
			b.WriteString(t.Format(strftimeLayouts[d]))
		default:
			b.WriteByte('%')
			b.WriteByte(d)
		}
	}
	return b.String()
}
