// Package surveyd starts the surveyd binary as its own process on a free
// loopback port, for the benchmarks that measure what ships.
package surveyd

import (
	"log"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Start runs the surveyd binary at path on a free loopback port with data
// as its folder, env as its environment (nil: this process's) and args
// after the usual flags, and waits until it accepts connections. Stop
// ends it (SIGTERM, then a kill after 20 s).
func Start(path, data string, env []string, args ...string) (addr string, pid int, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	cmd := exec.Command(path, append([]string{"--data", data, "--listen", addr, "--log-level", "error"}, args...)...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 400 {
			log.Fatal("surveyd did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}
	return addr, cmd.Process.Pid, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
}
