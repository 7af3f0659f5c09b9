// Default locations of the daemon's control socket and saved configuration,
// shared by the daemon and its clients. LUNKIT_SOCKET overrides the socket path
// (tests and unprivileged users set it).

export const DEFAULT_SOCKET_PATH = '/run/lunkit/lunkit.sock';
export const DEFAULT_SAVE_PATH = '/etc/lunkit/saveconfig.json';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.LUNKIT_SOCKET && env.LUNKIT_SOCKET.length > 0 ? env.LUNKIT_SOCKET : DEFAULT_SOCKET_PATH;
}
