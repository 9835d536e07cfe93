package localsock

// SunPathMax is the size of sockaddr_un.sun_path, including the final NUL.
const SunPathMax = 108
