// Command helm-render renders a Helm 3 chart the way `helm template` does, for
// the subset of Helm the graphserve chart uses, where no helm binary can be
// installed (Debian ships sprig, sigs.k8s.io/yaml and gojsonschema, the
// libraries Helm itself is built on, but not Helm).
//
//	helm-render [flags] RELEASE CHART_DIR
//
// Build (GOPATH mode against Debian's sources; apt-get install golang-go
// golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
// golang-github-xeipuuv-gojsonschema-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render ./tools/helm-render
//
// Covered, with Helm's semantics: Chart.yaml as .Chart (SemVer version,
// kubeVersion constraint checked against --kube-version); values.yaml coalesced
// with -f files (in order) and --set/--set-string (a.b=v, a[0]=v, {x,y}
// lists, typed scalars, null deletes a default); values.schema.json checked
// with gojsonschema; .Release (Name, Namespace, Service), .Chart, .Values;
// sprig (without env/expandenv) plus include, required, fail and toYaml;
// missingkey=zero with "<no value>" erased; partials (_*.tpl) not rendered;
// multi-document output split, checked as YAML and sorted by kind in Helm's
// install order (same kind: template order, as Helm keeps it), each with its
// "# Source:" line. --notes prints the rendered NOTES.txt instead of the manifests.
//
// Not covered (the chart must not use them): .Capabilities, .Template,
// .Files, tpl, lookup, fromYaml/fromJson, subcharts and dependencies, global
// values, hooks, library charts, --set-file/--set-json, --api-versions.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Metadata mirrors the Chart.yaml fields Helm exposes as .Chart (same Go names).
type Metadata struct {
	APIVersion  string   `json:"apiVersion"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	AppVersion  string   `json:"appVersion"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	Home        string   `json:"home"`
	Keywords    []string `json:"keywords"`
	Sources     []string `json:"sources"`
	KubeVersion string   `json:"kubeVersion"`
}

type Release struct {
	Name      string
	Namespace string
	Service   string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("helm-render", flag.ContinueOnError)
	var valueFiles, sets, setStrings listFlag
	fs.Var(&valueFiles, "f", "values file (repeatable)")
	fs.Var(&valueFiles, "values", "values file (repeatable)")
	fs.Var(&sets, "set", "key=value[,key=value] (repeatable)")
	fs.Var(&setStrings, "set-string", "key=value, always a string (repeatable)")
	namespace := fs.String("namespace", "default", "release namespace")
	kubeVersion := fs.String("kube-version", "v1.30.0", "Kubernetes version checked against Chart.yaml's kubeVersion")
	notes := fs.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: helm-render [flags] RELEASE CHART_DIR")
	}
	release, chartDir := fs.Arg(0), fs.Arg(1)

	meta, err := loadChart(chartDir)
	if err != nil {
		return err
	}
	defaults, err := readValuesFile(filepath.Join(chartDir, "values.yaml"), true)
	if err != nil {
		return err
	}
	user := map[string]interface{}{}
	for _, f := range valueFiles {
		v, err := readValuesFile(f, false)
		if err != nil {
			return err
		}
		user = mergeMaps(user, v)
	}
	for _, s := range sets {
		if err := parseSet(s, user, false); err != nil {
			return fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	for _, s := range setStrings {
		if err := parseSet(s, user, true); err != nil {
			return fmt.Errorf("failed parsing --set-string data: %w", err)
		}
	}
	values := coalesce(user, defaults)
	if err := validateSchema(chartDir, meta.Name, values); err != nil {
		return err
	}

	kv, kvName, err := parseKubeVersion(*kubeVersion)
	if err != nil {
		return err
	}
	if meta.KubeVersion != "" {
		c, err := semver.NewConstraint(meta.KubeVersion)
		if err != nil {
			return fmt.Errorf("Chart.yaml: kubeVersion %q: %w", meta.KubeVersion, err)
		}
		if !c.Check(kv) {
			return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", meta.KubeVersion, kvName)
		}
	}
	rel := Release{Name: release, Namespace: *namespace, Service: "Helm"}

	rendered, err := render(chartDir, meta, values, rel)
	if err != nil {
		return err
	}
	if *notes {
		fmt.Print(rendered[meta.Name+"/templates/NOTES.txt"])
		return nil
	}
	return writeManifests(os.Stdout, rendered)
}

// reorder lets flags follow the positionals, as helm's own command line allows.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && name != "notes" && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func loadChart(dir string) (*Metadata, error) {
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml file is missing: %w", err)
	}
	var m Metadata
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cannot load Chart.yaml: %w", err)
	}
	if m.APIVersion != "v2" {
		return nil, fmt.Errorf("Chart.yaml: apiVersion must be v2, got %q", m.APIVersion)
	}
	if m.Name == "" || m.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	if _, err := semver.StrictNewVersion(m.Version); err != nil {
		return nil, fmt.Errorf("Chart.yaml: version %q is not SemVer 2: %w", m.Version, err)
	}
	if m.Type != "" && m.Type != "application" {
		return nil, fmt.Errorf("Chart.yaml: only application charts are rendered, got type %q", m.Type)
	}
	return &m, nil
}

// readValuesFile parses YAML as Helm does (sigs.k8s.io/yaml: numbers become float64).
func readValuesFile(file string, optional bool) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		if optional && os.IsNotExist(err) {
			return map[string]interface{}{}, nil
		}
		return nil, err
	}
	v := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", file, err)
	}
	if v == nil {
		v = map[string]interface{}{}
	}
	return v, nil
}

// mergeMaps merges user-supplied sources: maps merge key by key, anything else is replaced.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if am, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(am, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce lays user values over the chart's defaults; a user null removes the default.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(defaults))
	for k, v := range defaults {
		out[k] = v
	}
	for k, uv := range user {
		if uv == nil {
			delete(out, k)
			continue
		}
		um, uIsMap := uv.(map[string]interface{})
		dm, dIsMap := out[k].(map[string]interface{})
		switch {
		case uIsMap && dIsMap:
			out[k] = coalesce(um, dm)
		case uIsMap && out[k] != nil && !dIsMap:
			fmt.Fprintf(os.Stderr, "coalesce.go: warning: cannot overwrite table with non table for %s (%v)\n", k, out[k])
			out[k] = stripNulls(um)
		case uIsMap:
			out[k] = stripNulls(um)
		default:
			out[k] = uv
		}
	}
	return out
}

func stripNulls(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		if v == nil {
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			v = stripNulls(vm)
		}
		out[k] = v
	}
	return out
}

var indexRe = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// parseSet applies one --set argument: comma-separated key=value pairs.
func parseSet(s string, into map[string]interface{}, asString bool) error {
	for _, pair := range splitUnescaped(s, ',', true) {
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return fmt.Errorf("key %q has no value", pair)
		}
		key, raw := pair[:eq], pair[eq+1:]
		var val interface{}
		if !asString && strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			items := []interface{}{}
			for _, it := range splitUnescaped(raw[1:len(raw)-1], ',', false) {
				items = append(items, typed(it, false))
			}
			val = items
		} else {
			val = typed(unescape(raw), asString)
		}
		if err := setPath(into, splitUnescaped(key, '.', false), val); err != nil {
			return err
		}
	}
	return nil
}

// splitUnescaped splits on sep, honouring backslash escapes (and, for the top level, {...} lists).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var parts []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			if sep == '.' && s[i+1] == '.' {
				cur.WriteByte('.')
			} else {
				cur.WriteByte(c)
				cur.WriteByte(s[i+1])
			}
			i++
		case braces && c == '{':
			depth++
			cur.WriteByte(c)
		case braces && c == '}':
			depth--
			cur.WriteByte(c)
		case c == sep && depth == 0:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, cur.String())
}

func unescape(s string) string { return strings.ReplaceAll(s, `\,`, ",") }

// typed converts a --set scalar as Helm's strvals does.
func typed(v string, asString bool) interface{} {
	if asString {
		return v
	}
	switch strings.ToLower(v) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if v == "0" {
		return int64(0)
	}
	if len(v) > 1 && v[0] == '0' {
		return v
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return v
}

func setPath(m map[string]interface{}, keys []string, val interface{}) error {
	k := keys[0]
	if match := indexRe.FindStringSubmatch(k); match != nil {
		idx, _ := strconv.Atoi(match[2])
		if idx > 65536 {
			return fmt.Errorf("index of %s too large", k)
		}
		list, _ := m[match[1]].([]interface{})
		for len(list) <= idx {
			list = append(list, nil)
		}
		if len(keys) == 1 {
			list[idx] = val
		} else {
			child, _ := list[idx].(map[string]interface{})
			if child == nil {
				child = map[string]interface{}{}
			}
			if err := setPath(child, keys[1:], val); err != nil {
				return err
			}
			list[idx] = child
		}
		m[match[1]] = list
		return nil
	}
	if k == "" {
		return errors.New("empty key")
	}
	if len(keys) == 1 {
		m[k] = val
		return nil
	}
	child, _ := m[k].(map[string]interface{})
	if child == nil {
		child = map[string]interface{}{}
	}
	m[k] = child
	return setPath(child, keys[1:], val)
}

func validateSchema(chartDir, chartName string, values map[string]interface{}) error {
	schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n", chartName)
	for _, e := range result.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}

// parseKubeVersion normalises "1.30" / "v1.30.2" to "v1.30.0" / "v1.30.2", as Helm's --kube-version does.
func parseKubeVersion(v string) (*semver.Version, string, error) {
	m := regexp.MustCompile(`^v?(\d+)\.(\d+)(\.\d+)?$`).FindStringSubmatch(v)
	if m == nil {
		return nil, "", fmt.Errorf("invalid --kube-version %q", v)
	}
	patch := m[3]
	if patch == "" {
		patch = ".0"
	}
	full := "v" + m[1] + "." + m[2] + patch
	return semver.MustParse(full), full, nil
}

func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	includeDepth := 0
	f["include"] = func(name string, v interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, name, v); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["toYaml"] = func(v interface{}) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	return f
}

// render executes every template (partials are only parsed), keyed by "CHART/templates/FILE".
func render(chartDir string, meta *Metadata, values map[string]interface{}, rel Release) (map[string]string, error) {
	tdir := filepath.Join(chartDir, "templates")
	var names []string
	sources := map[string]string{}
	err := filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		name := path.Join(meta.Name, filepath.ToSlash(rel))
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		names = append(names, name)
		sources[name] = string(data)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)

	t := template.New("gotpl").Option("missingkey=zero")
	t.Funcs(funcMap(t))
	for _, n := range names {
		if _, err := t.New(n).Parse(sources[n]); err != nil {
			return nil, fmt.Errorf("parse error in %q: %w", n, err)
		}
	}
	out := map[string]string{}
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		data := map[string]interface{}{
			"Values":  values,
			"Release": rel,
			"Chart":   meta,
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n, data); err != nil {
			return nil, err
		}
		out[n] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

// installOrder is Helm's order of kinds on install; kinds not listed come last.
var installOrder = []string{"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
	"StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"}

type manifest struct {
	source, content, kind string
}

var docSep = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

func writeManifests(w *os.File, rendered map[string]string) error {
	var ms []manifest
	var sources []string
	for n := range rendered {
		sources = append(sources, n)
	}
	sort.Strings(sources)
	for _, n := range sources {
		if strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		for _, doc := range docSep.Split(rendered[n], -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				return fmt.Errorf("YAML parse error on %s: %w", n, err)
			}
			ms = append(ms, manifest{source: n, content: strings.TrimSpace(doc), kind: head.Kind})
		}
	}
	rank := func(kind string) int {
		for i, k := range installOrder {
			if k == kind {
				return i
			}
		}
		return len(installOrder)
	}
	// Stable: objects of one kind keep the order of the templates (by file name) and of the documents within one.
	sort.SliceStable(ms, func(i, j int) bool {
		ri, rj := rank(ms[i].kind), rank(ms[j].kind)
		if ri != rj {
			return ri < rj
		}
		return ri == len(installOrder) && ms[i].kind < ms[j].kind
	})
	for _, m := range ms {
		if _, err := fmt.Fprintf(w, "---\n# Source: %s\n%s\n", m.source, m.content); err != nil {
			return err
		}
	}
	return nil
}
