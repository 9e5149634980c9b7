"""The machine: environment set-up, devices and threads, CPU inference backends, interrupts."""
