package main

// The health_test.yaml harness, after Argo CD's util/lua/health_test.go
// (TestLuaHealthScript, getObj): every case runs the directory's health.lua on
// its inputPath with open libraries, and passes only when status and message
// both equal the expected ones.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

type healthTestFile struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus healthStatus `json:"healthStatus"`
	} `json:"tests"`
}

func runHarness(dir string, openLibs bool, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "health argocd-test: %v\n", err)
		return exitBadCall
	}
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return fail(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		return fail(err)
	}
	var tests healthTestFile
	if err := yaml.Unmarshal(data, &tests); err != nil {
		return fail(fmt.Errorf("%s: %w", filepath.Join(dir, "health_test.yaml"), err))
	}
	// Argo's harness passes an empty list; a test that checks nothing is more
	// likely a typo here, so it is refused.
	if len(tests.Tests) == 0 {
		return fail(errors.New("health_test.yaml has no tests"))
	}
	failed := 0
	for _, tc := range tests.Tests {
		got, err := harnessCase(filepath.Join(dir, tc.InputPath), string(script), openLibs)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "FAIL %s  want %s got error: %s\n", tc.InputPath, show(tc.HealthStatus), oneLine(err.Error()))
		case got != tc.HealthStatus:
			failed++
			fmt.Fprintf(stdout, "FAIL %s  want %s got %s\n", tc.InputPath, show(tc.HealthStatus), show(got))
		default:
			fmt.Fprintf(stdout, "ok   %s  %s\n", tc.InputPath, show(got))
		}
	}
	fmt.Fprintf(stderr, "health argocd-test: %d of %d cases match in %s\n", len(tests.Tests)-failed, len(tests.Tests), dir)
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// harnessCase reads the input as getObj does (sigs.k8s.io/yaml into a map, so
// numbers are float64 and only the first YAML document counts).
func harnessCase(path, script string, openLibs bool) (healthStatus, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return healthStatus{}, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return healthStatus{}, err
	}
	return runHealthLua(obj, script, openLibs)
}

func show(hs healthStatus) string {
	return oneLine(fmt.Sprintf("%s: %s", hs.Status, hs.Message))
}

func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", `\n`)
}
