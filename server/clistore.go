package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// passphraseEnv holds an encrypted store's passphrase for unattended
// starts (a service manager's environment file, readable by root only).
const passphraseEnv = "TESSERA_STORE_PASSPHRASE"

// passphrase returns where a store's passphrase comes from: the file's
// first line (file set), else the environment, else the terminal (typed
// twice for a new store); ErrNoPassphrase when none is there.
//
// The answer is kept: a command that needs it twice asks once.
func passphrase(file string, stderr io.Writer) func(confirm bool) (string, error) {
	var kept string
	ask := readPassphrase(file, stderr)
	return func(confirm bool) (string, error) {
		if kept != "" {
			return kept, nil
		}
		p, err := ask(confirm)
		if err == nil {
			kept = p
		}
		return p, err
	}
}

func readPassphrase(file string, stderr io.Writer) func(confirm bool) (string, error) {
	return func(confirm bool) (string, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("--passphrase-file: %w", err)
			}
			line, _, _ := strings.Cut(string(b), "\n")
			return strings.TrimSuffix(line, "\r"), nil
		}
		if p := os.Getenv(passphraseEnv); p != "" {
			return p, nil
		}
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return "", ErrNoPassphrase
		}
		ask := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(stderr)
			return string(b), err
		}
		p, err := ask("store passphrase: ")
		if err != nil || !confirm {
			return p, err
		}
		again, err := ask("store passphrase again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the two passphrases differ")
		}
		return p, nil
	}
}

const backupUsage = `Usage:
  surveyd --data DIR [--passphrase-file F] backup FILE
  surveyd --data DIR [--passphrase-file F] [--encrypt] restore FILE

backup writes the Badger store in DIR to FILE (written beside it as
FILE.partial, then renamed: a FILE is always whole). Stop surveyd first: its
store is locked while it runs. The backup of an encrypted store is sealed
(AES-256-GCM) under the store's passphrase, with its own salt: it holds no
answer in the clear, and opens with that passphrase anywhere.

restore loads FILE into DIR, which must be new or empty. A sealed backup
asks for the passphrase of the store it came from, and the restored store
is encrypted with it; --encrypt restores a plain backup into an encrypted
store (the way to encrypt an existing one). A truncated or altered backup
is refused whole, and nothing is left in DIR.

The passphrase comes from --passphrase-file, else TESSERA_STORE_PASSPHRASE,
else the terminal.
`

// storeCommand runs "backup FILE" or "restore FILE" on the store in data.
func storeCommand(data, cmd string, args []string, passFile string, encrypt bool, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("surveyd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backupUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%s: name one FILE", cmd)
	}
	file := fs.Arg(0)
	pass := passphrase(passFile, stderr)
	switch cmd {
	case "backup":
		key, err := StoreKey(data, false, pass)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		var p string
		if key != nil {
			if p, err = pass(false); err != nil {
				return err
			}
		}
		n, err := Backup(data, key, p, file)
		if err != nil {
			return err
		}
		what := "plain (the store is not encrypted)"
		if key != nil {
			what = "sealed with the store's passphrase"
		}
		fmt.Fprintf(stdout, "backup of %s written to %s: %d bytes, %s\n", data, file, n, what)
		return nil
	default:
		sealed, err := BackupEncrypted(file)
		if err != nil {
			return fmt.Errorf("restore %s: %w", file, err)
		}
		var p string
		if sealed || encrypt {
			if p, err = pass(!sealed); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
		if err := Restore(data, file, p, encrypt); err != nil {
			return err
		}
		what := "plain"
		if sealed || encrypt {
			what = "encrypted with the passphrase"
		}
		fmt.Fprintf(stdout, "restored %s into %s (%s); start surveyd --data %s\n", file, data, what, data)
		return nil
	}
}
