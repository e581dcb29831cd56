"""Instance runtimes: one module (or package) per backend; `supervisord` is the local one."""
