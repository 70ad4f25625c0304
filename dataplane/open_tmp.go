package dataplane

import "errors"

// defaultOpen is replaced by OpenDevice once device support lands.
var defaultOpen = func(PortConfig) (Port, error) { return nil, errors.New("no device support") }
