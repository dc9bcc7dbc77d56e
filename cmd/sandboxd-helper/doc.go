// Command sandboxd-helper is the helper: the one long-lived process the
// engine starts to make sandboxes. Each sandbox's init (its pid 1) is a
// CLONE_VM clone of it; the helper itself runs in no sandbox. It is not
// installed on its own: `make build` embeds it in sandboxd (build tag
// embedhelper), which runs it from a sealed memfd. Being small, it starts
// in a fraction of the time the whole sandboxd binary would take to
// initialise its packages.
package main
