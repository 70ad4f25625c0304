package main

import (
	"fmt"
	"os"

	"github.com/vxswitch/vxswitch/bench/lab"
)

func main() {
	l := lab.New("vxs")
	l.Detach = true
	l.KeepDir = true
	c, _ := lab.ContenderByName(os.Args[1], "")
	hosts := 2
	if len(os.Args) > 2 {
		hosts = 1
	}
	top, err := lab.Build(l, c, lab.Options{Hosts: hosts, Containers: 3 - hosts})
	if err != nil {
		fmt.Println(err)
		l.Close()
		os.Exit(1)
	}
	fmt.Print(top.Describe())
	fmt.Println(l.Dir)
}
