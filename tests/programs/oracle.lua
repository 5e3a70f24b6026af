-- oracle.lua: a deterministic workload for Lua's C code, traced by sftrace
-- and by compiler-rt's XRay basic mode (tests/t_aarch64_oracle.py): the
-- interpreter's calls (parser, VM, GC, string interning, errors through
-- longjmp, coroutines) must come out the same in both logs.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local t = {}
for i = 1, 2000 do t[i] = string.format("%05d", (i * 7919) % 2003) end
table.sort(t, function(a, b) return a > b end)
local co = coroutine.wrap(function() for i = 1, 50 do coroutine.yield(i) end end)
local s = 0
for i = 1, 50 do s = s + co() end
local errs = 0
for i = 1, 20 do
  local ok = pcall(function() error({code = i}) end)
  if not ok then errs = errs + 1 end
end
local mt = {__index = function(_, k) return k * 2 end, __add = function(a, b) return a.v + b.v end}
local a, b = setmetatable({v = 1}, mt), setmetatable({v = 2}, mt)
local words = 0
for _ in string.gmatch(string.rep("alpha beta gamma ", 200), "%a+") do words = words + 1 end
local g = string.gsub("hello world from lua", "(%w+)", "<%1>")
collectgarbage("collect")
print(fib(18), #t, s, errs, a[21], a + b, words, #g)
