"""The only package that touches a toolchain, a serial port or an emulator."""
