// Translation unit that only exists to build the shared precompiled header.
