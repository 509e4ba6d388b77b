package cliutil

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// Profile starts the profiles that TESSERA_CPUPROFILE and TESSERA_MEMPROFILE
// name (files), so a command can be profiled as it ships, as its own
// process with its own memory settings. The returned function stops them
// and writes the heap profile; call it once, when the command ends.
func Profile() (stop func() error, err error) {
	var cpu *os.File
	if path := os.Getenv("TESSERA_CPUPROFILE"); path != "" {
		if cpu, err = os.Create(path); err != nil {
			return nil, fmt.Errorf("TESSERA_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("TESSERA_CPUPROFILE: %w", err)
		}
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return fmt.Errorf("TESSERA_CPUPROFILE: %w", err)
			}
		}
		path := os.Getenv("TESSERA_MEMPROFILE")
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("TESSERA_MEMPROFILE: %w", err)
		}
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("TESSERA_MEMPROFILE: %w", err)
		}
		return f.Close()
	}, nil
}
