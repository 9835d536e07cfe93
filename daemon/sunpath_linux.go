package daemon

// sunPathMax is the size of sockaddr_un.sun_path, including the final NUL.
const sunPathMax = 108
