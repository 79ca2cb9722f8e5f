/** The routes an Express app or router answers, read from its stack (Express 5 layers). */
import type { Router } from 'express';

export const routeKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

/**
 * `METHOD /path/{param}` for every route, sub-routers included. Paths are as the route declared
 * them: a sub-router's mount prefix is not added (Portico mounts its routers without one, except
 * the admin API under /api/v1).
 */
export function routerRoutes(router: Router | { router: Router }): string[] {
  const out: string[] = [];
  const walk = (stack: unknown[]) => {
    for (const layer of stack as { route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const m of Object.keys(layer.route.methods)) for (const p of paths) out.push(routeKey(m === '_all' ? 'all' : m, p.replace(/:(\w+)/g, '{$1}')));
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  const root = 'stack' in router ? router : (router as { router: Router }).router;
  walk((root as unknown as { stack: unknown[] }).stack);
  return [...new Set(out)];
}
