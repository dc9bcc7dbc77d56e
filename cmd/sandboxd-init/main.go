// Command sandboxd-init is the init that runs as pid 1 inside every
// sandbox. It is not installed on its own: `make build` embeds it in
// sandboxd (build tag embedinit), which runs it from memory. Being small, it
// starts in a fraction of the time the whole sandboxd binary would take to
// initialise its packages on every run.
package main

import "github.com/sandboxd/sandboxd/nsjail"

func main() { nsjail.Init() }
