package main

import "github.com/sandboxd/sandboxd/nsjail"

func main() { nsjail.HelperMain() }
