// Package cli is the fieldapp command line: init (enrollment), records
// (new, set, get, list, finalize, resolve, delete, import), forms, sync,
// info, the PIN and serve (the web UI). Each command is an adapter over the
// Device API (package fieldapp): flags and text in, the API's results out.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/internal/cliutil"
	"golang.org/x/term"
)

const mainUsage = `fieldapp: Tessera on an enumerator's device. Works offline; syncs when a
link to the server (or camp-office hub) exists.

Usage:
  fieldapp [--data DIR] COMMAND [ARGS]

Commands:
  init --server URL [--enroll CODE]  create the encrypted device store (asks for a PIN), enrolled with a lead's code
  serve [--listen ADDR]              the interview web UI on this device (default 127.0.0.1:8081)
  pin change                         change the PIN (asks for the current one, then the new one twice)
  record new FORM [field=value ...]  create a record; prints its id
  record set ID field=value ...      change answers
  record delete ID                   delete a record (a concurrent edit is kept as a conflict)
  record get ID [--json]             show a record, conflicts included
  record list [--json]               list records
  record resolve ID field=value ...  settle conflicting answers (or --restore / --delete)
  record finalize ID [--lang L]      compute calculations and check the record against its form
  record import FILE.jsonl           bulk-create records, one {"form":..,"fields":{..}} per line
  form list [--json]                 the forms on this device (fetched when syncing)
  sync [--json] [--server URL]       push what the server lacks, then pull what is new (--progress: a line per round trip)
  info [--json]                      show the replica id, server and pending changes
  bundle export FILE [--max-mb N]    sync by file: what the server lacks, sealed to it (see bundle --help)
  bundle import FILE...              apply the server's reply to a bundle

Values: 12 is an integer, 1.5 a decimal, true/false a boolean, null clears
the answer; anything else (including 007 or 1e3) is text.

The store is encrypted with a key derived from the enumerator's PIN (or
passphrase: at least 6 characters, not a run such as 000000 or 123456);
every command that opens it asks for the
PIN on the terminal, or reads it from TESSERA_PIN (pin change reads the new
one from TESSERA_NEW_PIN). A wrong PIN waits 1 s, doubling with each wrong
PIN in a row (at most 30 s).

Profiling (developers): TESSERA_CPUPROFILE=FILE and TESSERA_MEMPROFILE=FILE
write the command's CPU and allocation profiles for go tool pprof.

Global flags:
`

// Main runs the fieldapp command line.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("TESSERA_DATA", "./device"), "device data directory (env TESSERA_DATA)")
	fs.Usage = func() { fmt.Fprint(stderr, mainUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	if fs.Arg(0) == "help" {
		fs.Usage()
		return nil
	}
	stop, err := cliutil.Profile()
	if err != nil {
		return err
	}
	err = (&cli{ctx: ctx, dir: *data, stdin: stdin, stdout: stdout, stderr: stderr}).run(fs.Arg(0), fs.Args()[1:])
	if perr := stop(); err == nil {
		err = perr
	}
	return err
}

func (c *cli) run(cmd string, rest []string) error {
	switch cmd {
	case "init":
		return c.init(rest)
	case "record":
		return c.record(rest)
	case "sync":
		limitMemory()
		return c.sync(rest)
	case "form":
		return c.form(rest)
	case "info":
		return c.info(rest)
	case "serve":
		return c.serve(rest)
	case "pin":
		return c.pinCmd(rest)
	case "bundle":
		limitMemory()
		return c.bundle(rest)
	}
	return fmt.Errorf("unknown command %q (see fieldapp --help)", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func helpOK(err error) error { return cliutil.HelpOK(err) }

type cli struct {
	ctx            context.Context
	dir            string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// parse parses flags that may stand before, between or after positional
// arguments ("record get ID --json") and checks the positional count.
func (c *cli) parse(fs *flag.FlagSet, usage string, args []string, minPos, maxPos int) ([]string, error) {
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: fieldapp [--data DIR] %s\n", usage)
		fs.PrintDefaults()
	}
	pos, err := cliutil.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		fs.Usage()
		return nil, fmt.Errorf("%s: wrong number of arguments", strings.Join(strings.Fields(usage)[:min(2, len(strings.Fields(usage)))], " "))
	}
	return pos, nil
}

func (c *cli) open() (*fieldapp.Device, error) {
	if err := c.haveStore(); err != nil {
		return nil, err
	}
	pin, err := c.pin(false)
	if err != nil {
		return nil, err
	}
	return fieldapp.Open(c.ctx, c.dir, pin)
}

// haveStore is ErrNoStore when --data holds no device store.
func (c *cli) haveStore() error {
	if !fieldapp.Exists(c.dir) {
		return fmt.Errorf("%s: %w", c.dir, fieldapp.ErrNoStore)
	}
	return nil
}

// pin reads the PIN from TESSERA_PIN or, on a terminal, asks for it
// without echo (twice when confirm is set, for a new PIN).
func (c *cli) pin(confirm bool) (string, error) {
	return c.secret("TESSERA_PIN", "PIN", confirm, fieldapp.ErrNoPIN)
}

// secret reads a PIN from the environment variable env or, on a terminal,
// asks for it without echo (twice when confirm is set); noTerminal is the
// error when neither is there.
func (c *cli) secret(env, name string, confirm bool, noTerminal error) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", noTerminal
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(b), err
	}
	p, err := ask(name + ": ")
	if err != nil || !confirm {
		return p, err
	}
	again, err := ask(name + " again: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", fmt.Errorf("the two %ss differ", name)
	}
	return p, nil
}

func writeJSON(w io.Writer, v any) error { return cliutil.WriteJSON(w, v) }
