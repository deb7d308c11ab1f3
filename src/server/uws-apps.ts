import { readFileSync } from 'node:fs';
import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import type { Config } from '../config/config.js';
import type { Publisher } from '../core/event-router.js';
import { StartupError } from '../errors.js';

/** The node's uWS apps: `ws://`/`http://` on `PORT`, and with TLS configured also `wss://`/`https://` on `TLS_PORT`. */
export interface UwsApps {
  readonly apps: readonly TemplatedApp[];
  /**
   * Publishes to a uWS topic on every app (topics belong to an app, and a
   * socket of either may be subscribed).
   */
  readonly publisher: Publisher;
  /** Binds the ports; resolves with those bound (useful with port 0). */
  listen(host: string): Promise<{ port: number; tlsPort: number | null }>;
  /** Stops listening (open sockets stay until they are closed). */
  close(): void;
}

/** Makes the apps (checking the TLS files now, so that a bad path stops start-up with a message). */
export function uwsApps(config: Config): UwsApps {
  const tls = tlsOptions(config);
  const apps: TemplatedApp[] = [uWS.App(), ...(tls ? [uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile })] : [])];
  const listening: us_listen_socket[] = [];
  const listen = (app: TemplatedApp, host: string, at: number) =>
    new Promise<us_listen_socket>((resolve, reject) => {
      app.listen(host, at, (socket) => (socket ? resolve(socket) : reject(new StartupError(`cannot listen on ${host}:${at}`))));
    });
  const portOf = (socket: us_listen_socket) => uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
  return {
    apps,
    publisher: {
      publish(topic: string, message: uWS.RecognizedString, isBinary?: boolean): boolean {
        for (const app of apps) app.publish(topic, message, isBinary);
        return true;
      },
      numSubscribers(topic: string): number {
        let count = 0;
        for (const app of apps) count += app.numSubscribers(topic);
        return count;
      },
    },
    listen: async (host) => {
      listening.push(await listen(apps[0]!, host, config.PORT));
      if (tls) {
        try {
          listening.push(await listen(apps[1]!, host, tls.port));
        } catch (error) {
          uWS.us_listen_socket_close(listening[0]!);
          throw error;
        }
      }
      return { port: portOf(listening[0]!), tlsPort: listening[1] ? portOf(listening[1]) : null };
    },
    close: () => {
      for (const socket of listening.splice(0)) uWS.us_listen_socket_close(socket);
    },
  };
}

/** `wss://` on `TLS_PORT` when both `TLS_CERT_FILE` and `TLS_KEY_FILE` are set (and readable). */
function tlsOptions(config: Config): { port: number; certFile: string; keyFile: string } | undefined {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } = config;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new StartupError('TLS needs both TLS_CERT_FILE and TLS_KEY_FILE');
  for (const [key, file] of [['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile]] as const) {
    try {
      readFileSync(file);
    } catch (error) {
      throw new StartupError(`${key}=${JSON.stringify(file)}: cannot read it (${(error as Error).message})`);
    }
  }
  return { port: config.TLS_PORT, certFile, keyFile };
}
