// Command health tells what two GitOps tools would say about the health of a
// Kubernetes object, by running their own logic rather than a re-implementation
// of it, so the operator's tests can check how ShopifyShop looks to them.
//
//	health kstatus                        < object.yaml
//	health argocd --script health.lua     < object.yaml
//	health argocd-test DIR
//
// kstatus is sigs.k8s.io/cli-utils pkg/kstatus/status.Compute, the library
// Flux's health checks are built on.
//
// argocd runs a health.lua in github.com/yuin/gopher-lua (the VM Argo CD
// embeds) with Argo CD's calling convention, written here after reading
// github.com/argoproj/argo-cd at 37ee0097cf85 (master, 2026-08-22; it pins
// gopher-lua v1.1.2 too):
//   - util/lua/lua.go VM.runLuaWithResourceActionParameters: the LState and its
//     libraries, the 1 s context timeout, the globals `actionParams` and `obj`,
//     LoadString + PCall, run errors stripped of their stack trace
//     (runHealthLua in argocd.go);
//   - util/lua/lua.go decodeValue: how the object becomes Lua values (toLua);
//   - util/lua/lua.go VM.ExecuteHealthLua and isValidHealthStatusCode: how
//     the returned value becomes a health status (healthFromLua);
//   - layeh.com/gopher-json Encode (the version Argo pins, 97fed8db8427): how
//     the returned table becomes JSON before that (luaToJSON);
//   - util/lua/oslib_safe.go OpenSafeOs, SafeOsLoader: the "safe" os module
//     (openSafeOs, loadSafeOs in argocd.go);
//   - util/lua/lua.go VM.GetHealthScript: built-in scripts (and the test
//     harness) run with every standard library open; argocd-cm overrides only
//     when resource.customizations.useOpenLibs.<group>_<kind> is true (hence
//     --open-libs, default true);
//   - util/lua/health_test.go TestLuaHealthScript, getObj: the health_test.yaml
//     harness (harness.go).
//
// Not reproduced: gitops-engine/pkg/health/health.go GetResourceHealth, the
// controller's wrapper around the script, which answers Progressing "Pending
// deletion" for an object with a deletionTimestamp before any script runs, and
// turns a script error into Unknown with the error as message (here: exit 2).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

const usage = `usage:
  health kstatus                                   < object (JSON or YAML)
  health argocd --script health.lua [--open-libs=false] < object (JSON or YAML)
  health argocd-test [--open-libs=false] DIR       (DIR holds health.lua, health_test.yaml)

kstatus and argocd print {"status":"...","message":"..."} and exit 0, or exit 2
on bad input or a script error. argocd-test prints one line per case and exits
1 if any case fails.
`

// Exit codes the callers (the Rust tests) tell apart.
const (
	exitOK      = 0
	exitFailed  = 1 // argocd-test: a case did not match
	exitBadCall = 2 // bad input, bad arguments, or the script raised an error
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadCall
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "health %s: %v\n", args[0], err)
		return exitBadCall
	}
	fs := flag.NewFlagSet("health "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	switch args[0] {
	case "kstatus":
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
			return fail(errors.New("takes no arguments; the object comes on stdin"))
		}
		obj, err := readObject(stdin)
		if err != nil {
			return fail(err)
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			return fail(err)
		}
		return printResult(stdout, result{Status: res.Status.String(), Message: res.Message})
	case "argocd":
		script := fs.String("script", "", "path of the health.lua to run")
		openLibs := fs.Bool("open-libs", true, "open the standard Lua libraries, as for built-in scripts")
		if err := fs.Parse(args[1:]); err != nil {
			return exitBadCall
		}
		if *script == "" || fs.NArg() != 0 {
			return fail(errors.New("needs --script PATH and no other argument"))
		}
		src, err := os.ReadFile(*script)
		if err != nil {
			return fail(err)
		}
		obj, err := readObject(stdin)
		if err != nil {
			return fail(err)
		}
		hs, err := runHealthLua(obj, string(src), *openLibs)
		if err != nil {
			return fail(err)
		}
		return printResult(stdout, result(hs))
	case "argocd-test":
		openLibs := fs.Bool("open-libs", true, "open the standard Lua libraries, as Argo CD's harness does")
		if err := fs.Parse(args[1:]); err != nil {
			return exitBadCall
		}
		if fs.NArg() != 1 {
			return fail(errors.New("needs exactly one DIR"))
		}
		return runHarness(fs.Arg(0), *openLibs, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "health: unknown subcommand %q\n%s", args[0], usage)
		return exitBadCall
	}
}

func printResult(w io.Writer, r result) int {
	line, _ := json.Marshal(r) // two strings: cannot fail
	fmt.Fprintf(w, "%s\n", line)
	return exitOK
}

// readObject decodes the single object on r as the API server's clients do
// (apimachinery's JSON rules: whole numbers become int64, others float64), so
// kstatus sees metadata.generation as the int64 it expects from a live object
// and the Lua script sees the numbers Argo CD's cluster cache would hand it.
func readObject(r io.Reader) (map[string]any, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs []json.RawMessage
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stdin is not JSON or YAML: %w", err)
		}
		// Empty YAML documents (a leading "---", comments only) are not objects.
		if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
			continue
		}
		docs = append(docs, raw)
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("stdin must hold exactly one object, found %d", len(docs))
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(docs[0], &obj); err != nil {
		return nil, fmt.Errorf("stdin is not a Kubernetes object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("stdin is not a Kubernetes object (not a mapping)")
	}
	if kind, _ := obj["kind"].(string); strings.HasSuffix(kind, "List") {
		if _, isList := obj["items"]; isList {
			return nil, fmt.Errorf("stdin holds a %s; give one object", kind)
		}
	}
	return obj, nil
}
