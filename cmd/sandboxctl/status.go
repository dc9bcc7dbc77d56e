package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// psCmd is `sandboxctl ps`: the jobs running or queued.
func psCmd(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("ps", "[--json]")
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError(fs.Name(), fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *asJSON {
		return c.printRaw(ctx, "/v1/runs")
	}
	runs, err := c.client().Runs(ctx)
	if err != nil {
		return c.fail(ctx, err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUID\tSTATE\tSTEP\tAGE")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.ID, r.CallerUID, r.State, stepOf(r), age(r.AgeMS))
	}
	tw.Flush()
	return exitOK
}

// stepOf shows where a job is: the step running, counted from 1, of all.
func stepOf(r api.RunInfo) string {
	i := r.Step
	if r.State == api.StateRunning {
		i++ // Step is the index of the step running
	}
	return fmt.Sprintf("%d/%d", min(i, r.Steps), r.Steps)
}

func age(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// cancelCmd is `sandboxctl cancel ID`.
func cancelCmd(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("cancel", "ID")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return c.usageError(fs.Name(), fmt.Errorf("want exactly one job ID, got %d arguments", fs.NArg()))
	}
	id := fs.Arg(0)
	if err := c.client().Cancel(ctx, id); err != nil {
		return c.fail(ctx, err)
	}
	fmt.Fprintf(c.stdout, "cancelled %s\n", id)
	return exitOK
}

// pingCmd is `sandboxctl ping`.
func pingCmd(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("ping", "")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError(fs.Name(), fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := c.client().Ping(ctx); err != nil {
		return c.fail(ctx, err)
	}
	fmt.Fprintln(c.stdout, "OK")
	return exitOK
}

// infoCmd is `sandboxctl info`.
func infoCmd(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("info", "[--json]")
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError(fs.Name(), fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *asJSON {
		return c.printRaw(ctx, "/v1/info")
	}
	info, err := c.client().Info(ctx)
	if err != nil {
		return c.fail(ctx, err)
	}
	printInfo(c.stdout, info)
	return exitOK
}

func printInfo(w io.Writer, info *api.Info) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version:\t%s\n", info.Version)
	fmt.Fprintf(tw, "kernel:\t%s\n", info.Kernel)
	fmt.Fprintf(tw, "cgroup:\t%s, controllers: %s\n", info.Cgroup.Mode, orNone(info.Cgroup.Controllers))
	var have, lack []string
	for _, name := range sortedKeys(info.Features) {
		if info.Features[name] {
			have = append(have, name)
		} else {
			lack = append(lack, name)
		}
	}
	fmt.Fprintf(tw, "features:\t%s\n", orNone(have))
	if len(lack) > 0 {
		fmt.Fprintf(tw, "missing:\t%s\n", strings.Join(lack, " "))
	}
	p := info.Pool
	fmt.Fprintf(tw, "pool:\t%d running, %d queued; concurrency %d, queue size %d\n", p.Running, p.Queued, p.Concurrency, p.QueueSize)
	conf := fmt.Sprintf("generation %d", info.Config.Generation)
	if info.Config.ReloadError != "" {
		conf += "; the last reload was refused: " + info.Config.ReloadError
	}
	if len(info.Config.RestartPending) > 0 {
		conf += "; changed in the file, applies at a restart: " + strings.Join(info.Config.RestartPending, ", ")
	}
	fmt.Fprintf(tw, "config:\t%s\n", conf)
	tw.Flush()

	langs := map[string]api.LanguageInfo{}
	for _, l := range info.Languages {
		langs[l.Profile] = l
	}
	for _, prof := range info.Profiles {
		fmt.Fprintf(w, "\nprofile %s:\n", prof.Name)
		if l, ok := langs[prof.Name]; ok {
			if l.Available {
				fmt.Fprintf(w, "  language: %s %s\n", l.Language, l.Version)
			} else {
				fmt.Fprintf(w, "  language: %s, unavailable: %s\n", l.Language, l.Reason)
			}
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  limit\tdefault\tmaximum")
		for _, f := range api.LimitFields {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.JSON, limitValue(f.JSON, *f.Get(&prof.Defaults)), limitValue(f.JSON, *f.Get(&prof.Max)))
		}
		fmt.Fprintf(tw, "  cpus\t%s\t%s\n", cpusValue(prof.Defaults.CPUs), cpusValue(prof.Max.CPUs))
		fmt.Fprintf(tw, "  workspace_bytes\t%s\t%s\n", limitValue("workspace_bytes", prof.WorkspaceBytes), limitValue("workspace_bytes", prof.MaxWorkspaceBytes))
		tw.Flush()
	}
}

// cpusValue shows a cpus limit.
func cpusValue(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', -1, 64) + " CPUs"
}

// limitValue shows a limit in its unit; bytes in the largest binary unit
// that divides them.
func limitValue(field string, v int64) string {
	switch {
	case v == 0:
		return "-"
	case strings.HasSuffix(field, "_ms"):
		return fmt.Sprintf("%d ms", v)
	case strings.HasSuffix(field, "_bytes"):
		for _, u := range []struct {
			name string
			size int64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if v%u.size == 0 {
				return fmt.Sprintf("%d %s", v/u.size, u.name)
			}
		}
		return fmt.Sprintf("%d bytes", v)
	}
	return fmt.Sprint(v)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

// printRaw prints the daemon's JSON answer as it came, indented.
func (c *cli) printRaw(ctx context.Context, path string) int {
	var raw json.RawMessage
	if err := c.client().Do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return c.fail(ctx, err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	c.stdout.Write(buf.Bytes())
	return exitOK
}

func sortedKeys[M ~map[K]V, K cmp.Ordered, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
