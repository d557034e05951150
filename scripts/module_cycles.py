#!/usr/bin/env python3
# cycles.py plus: expands `use crate::{a::B, c}` groups, and resolves a re-exported name
# (`pub use x::Y` in a module) to the module that defines it.
import os,re,sys
root=sys.argv[1]; crate_src=os.path.join(root,'src'); depth=int(sys.argv[2])
mods={}
for dp,dn,fn in os.walk(crate_src):
    for f in fn:
        if not f.endswith('.rs'): continue
        p=os.path.join(dp,f); rel=os.path.relpath(p,crate_src)[:-3]
        parts=rel.split(os.sep)
        if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
        mods['::'.join(parts)]=p
def strip(src):
    src=re.split(r'#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod \w+\s*\{', src)[0]
    return '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith('//'))
def expand(path):
    # expand one level of braces recursively
    m=re.match(r'^(.*?)::\{(.*)\}$', path, re.S)
    if not m: return [path]
    pre, inner=m.group(1), m.group(2)
    items=[];depth_=0;cur=''
    for ch in inner:
        if ch=='{': depth_+=1
        if ch=='}': depth_-=1
        if ch==',' and depth_==0: items.append(cur.strip()); cur=''
        else: cur+=ch
    if cur.strip(): items.append(cur.strip())
    out=[]
    for it in items:
        it=re.sub(r'\s+as\s+\w+$','',it)
        if it=='self': out.append(pre)
        else: out+= expand(pre+'::'+it)
    return out
def abs_path(cur, path):
    segs=path.split('::')
    if segs[0]=='crate': base=[]; segs=segs[1:]
    elif segs[0]=='super':
        base=cur.split('::') if cur else []
        while segs and segs[0]=='super': base=base[:-1]; segs=segs[1:]
    elif segs[0]=='self': base=cur.split('::') if cur else []; segs=segs[1:]
    else: return None
    return base+segs
# re-exports: module -> {name: target abs segs}
reexp={}
srcs={m:strip(open(p).read()) for m,p in mods.items()}
for m,src in srcs.items():
    for u in re.findall(r'pub(?:\([a-z]+\))?\s+use\s+([^;]+);', src, re.S):
        u=re.sub(r'\s+','',u)
        for e in expand(u):
            segs=abs_path(m,e)
            if segs is None:
                # relative to self module (e.g. `pub use config::X`)
                segs=(m.split('::') if m else [])+e.split('::')
            reexp.setdefault(m,{})[segs[-1]]=segs
def resolve(segs, seen=0):
    for i in range(len(segs),-1,-1):
        cand='::'.join(segs[:i])
        if cand in mods:
            rest=segs[i:]
            if rest and cand in reexp and rest[0] in reexp[cand] and seen<5:
                t=reexp[cand][rest[0]]
                if t[:len(segs[:i])]!=segs[:i] or len(t)>i+1:
                    r=resolve(t+rest[1:], seen+1)
                    if r is not None: return r
            return cand
    return None
edges={}
for m,src in srcs.items():
    found=[]
    for u in re.findall(r'\buse\s+((?:crate|super|self)::[^;]+);', src, re.S):
        found+=expand(re.sub(r'\s+','',u))
    found+=re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', src)
    for u in found:
        segs=abs_path(m,u.rstrip(':'))
        if segs is None: continue
        segs=[s for s in segs if s!='*']
        t=resolve(segs)
        if t is None or t==m: continue
        cm='::'.join(m.split('::')[:depth]); ct='::'.join(t.split('::')[:depth])
        if cm==ct or cm.startswith(ct+'::') or ct.startswith(cm+'::') or ct=='': continue
        edges.setdefault(cm,set()).add(ct)
sys.setrecursionlimit(10000)
idx={};low={};st=[];on=set();res=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges.get(v,()):
        if w not in idx: sc(w); low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v: break
        if len(comp)>1: res.append(sorted(comp))
for v in sorted(set(list(edges)+[x for s_ in edges.values() for x in s_])):
    if v not in idx: sc(v)
for r in res: print(root,"CYCLE:",r)
if len(sys.argv)>3:
    for a in sorted(edges):
        if a.startswith(sys.argv[3]): print(a,'->',sorted(edges[a]))
