/** The routes an Express app or router answers, read from its stack (Express 5 layers). */
import type { Router } from 'express';

export const routeKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

/**
 * `METHOD /path/{param}` for every route, sub-routers included, each under the path its router is
 * mounted at (`app.use('/scim/v2/:directory', router)` gives `/scim/v2/{directory}/Users`).
 */
export function routerRoutes(router: Router | { router: Router }): string[] {
  const out: string[] = [];
  type Layer = { route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: unknown[] }; rawPath?: unknown };
  const walk = (stack: unknown[], prefix: string) => {
    for (const layer of stack as Layer[]) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const m of Object.keys(layer.route.methods)) for (const p of paths) out.push(routeKey(m === '_all' ? 'all' : m, `${prefix}${p}`.replace(/:(\w+)/g, '{$1}')));
      } else if (layer.handle?.stack) {
        // Express 5 (router 2) keeps the path a router was mounted at as `rawPath` ('/' when none).
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath.replace(/\/$/, '') : '';
        walk(layer.handle.stack, prefix + mount);
      }
    }
  };
  const root = 'stack' in router ? router : (router as { router: Router }).router;
  walk((root as unknown as { stack: unknown[] }).stack, '');
  return [...new Set(out)];
}
