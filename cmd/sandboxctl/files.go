package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// filesCmd is `sandboxctl files`: the daemon's file cache.
func filesCmd(ctx context.Context, c *cli, args []string) int {
	if len(args) == 0 {
		return c.usageError("files", errors.New("a subcommand is needed: upload FILE..., ls, get ID [-o FILE], rm ID..."))
	}
	switch args[0] {
	case "upload":
		return filesUpload(ctx, c, args[1:])
	case "ls":
		return filesList(ctx, c, args[1:])
	case "get":
		return filesGet(ctx, c, args[1:])
	case "rm":
		return filesRemove(ctx, c, args[1:])
	}
	return c.usageError("files", fmt.Errorf("unknown subcommand %q: upload, ls, get, rm", args[0]))
}

// filesUpload puts each FILE into the cache and prints its id, size and
// name, one line each.
func filesUpload(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("files upload", "FILE...")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return c.usageError(fs.Name(), errors.New("no file given"))
	}
	cl := c.client()
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return c.usageError(fs.Name(), err)
		}
		cf, err := cl.Upload(ctx, f)
		f.Close()
		if err != nil {
			return c.fail(ctx, fmt.Errorf("%s: %w", path, err))
		}
		fmt.Fprintf(c.stdout, "%s\t%d\t%s\n", cf.ID, cf.Size, path)
	}
	return exitOK
}

func filesList(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("files ls", "[--json]")
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError(fs.Name(), fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *asJSON {
		return c.printRaw(ctx, "/v1/files")
	}
	files, err := c.client().Files(ctx)
	if err != nil {
		return c.fail(ctx, err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tLAST USED\tUID")
	for _, f := range files {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", f.ID, f.Size, f.LastUsed, f.UploadedBy)
	}
	tw.Flush()
	return exitOK
}

// filesGet writes a cached file to stdout, or to -o FILE (written whole or
// not at all).
func filesGet(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("files get", "ID [-o FILE]")
	out := fs.String("o", "", "write to `FILE` instead of stdout")
	// ID -o FILE as well as -o FILE ID.
	if len(args) > 1 && !strings.HasPrefix(args[0], "-") {
		args = append(args[1:], args[0])
	}
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return c.usageError(fs.Name(), errors.New("one ID is needed"))
	}
	if *out == "" {
		if err := c.client().Download(ctx, fs.Arg(0), c.stdout); err != nil {
			return c.fail(ctx, err)
		}
		return exitOK
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".sandboxctl-get-")
	if err != nil {
		return c.usageError(fs.Name(), err)
	}
	defer os.Remove(tmp.Name())
	err = c.client().Download(ctx, fs.Arg(0), tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		return c.usageError(fs.Name(), cerr)
	}
	if err != nil {
		return c.fail(ctx, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return c.usageError(fs.Name(), err)
	}
	return exitOK
}

func filesRemove(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("files rm", "ID...")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return c.usageError(fs.Name(), errors.New("no ID given"))
	}
	for _, id := range fs.Args() {
		if err := c.client().DeleteFile(ctx, id); err != nil {
			return c.fail(ctx, err)
		}
	}
	return exitOK
}
