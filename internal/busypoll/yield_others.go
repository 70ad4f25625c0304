//go:build !linux

package busypoll

func yield() {}
