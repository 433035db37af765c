package lkfile

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// kind is what a YAML value must be.
type kind int

const (
	kString kind = iota
	kBool
	kInt
	kStringOrInt // a user or group: a number or a name
	kList
	kMap // an object whose keys are free, holding values of one kind
	kObject
)

// node is a schema: LinuxKit's JSON schema for its YAML, in which every
// object refuses keys it does not name.
type node struct {
	kind     kind
	items    *node            // of kList and kMap
	props    map[string]*node // of kObject
	required []string         // of kObject
}

func object(props map[string]*node, required ...string) *node {
	return &node{kind: kObject, props: props, required: required}
}

func listOf(n *node) *node { return &node{kind: kList, items: n} }

var (
	str        = &node{kind: kString}
	boolean    = &node{kind: kBool}
	integer    = &node{kind: kInt}
	strOrInt   = &node{kind: kStringOrInt}
	stringList = listOf(str)
	mapStrings = &node{kind: kMap, items: str}
)

// schema returns the schema of a LinuxKit YAML file. It is built anew for
// each use, so that no caller can change another's.
func schema() *node {
	mount := object(map[string]*node{"destination": str, "type": str, "source": str, "options": stringList})
	idMapping := object(map[string]*node{"hostID": integer, "containerID": integer, "size": integer})
	throttle := listOf(object(map[string]*node{"major": integer, "minor": integer, "rate": integer}))
	resources := object(map[string]*node{
		"devices": listOf(object(map[string]*node{
			"allow": boolean, "type": str, "major": integer, "minor": integer, "access": str,
		})),
		"memory": object(map[string]*node{
			"limit": integer, "reservation": integer, "swap": integer, "kernel": integer,
			"kernelTCP": integer, "swappiness": integer, "disableOOMKiller": boolean,
		}),
		"cpu": object(map[string]*node{
			"shares": integer, "quota": integer, "period": integer, "realtimeRuntime": integer,
			"realtimePeriod": integer, "cpus": str, "mems": str,
		}),
		"pids": object(map[string]*node{"limit": integer}),
		"blockio": object(map[string]*node{
			"weight": integer, "leafWeight": integer,
			"weightDevice": listOf(object(map[string]*node{
				"major": integer, "minor": integer, "weight": integer, "leafWeight": integer,
			})),
			"throttleReadBpsDevice": throttle, "throttleWriteBpsDevice": throttle,
			"throttleReadIOPSDevice": throttle, "throttleWriteIOPSDevice": throttle,
		}),
		"hugepageLimits": listOf(object(map[string]*node{"pageSize": str, "limit": integer})),
		"network": object(map[string]*node{
			"classID":    integer,
			"priorities": listOf(object(map[string]*node{"name": str, "priority": integer})),
		}),
	})
	namespaces := object(map[string]*node{
		"cgroup": str, "ipc": str, "mnt": str, "net": str, "pid": str, "user": str, "uts": str,
	})
	runtime := object(map[string]*node{
		"cgroups": stringList,
		"mounts":  listOf(mount),
		"mkdir":   stringList,
		"interfaces": listOf(object(map[string]*node{
			"name": str, "add": str, "peer": str, "createInRoot": boolean,
		})),
		"bindNS":    namespaces,
		"namespace": str,
	})
	image := object(map[string]*node{
		"name": str, "image": str,
		"capabilities": stringList, "capabilities.add": stringList, "ambient": stringList,
		"mounts": listOf(mount), "binds": stringList, "binds.add": stringList,
		"devices": listOf(object(map[string]*node{
			"path": str, "type": str, "major": integer, "minor": integer, "mode": str,
		})),
		"tmpfs": stringList, "command": stringList, "env": stringList, "cwd": str,
		"net": str, "pid": str, "ipc": str, "uts": str, "userns": str,
		"readonly": boolean, "maskedPaths": stringList, "readonlyPaths": stringList,
		"uid": strOrInt, "gid": strOrInt, "additionalGids": listOf(strOrInt),
		"noNewPrivileges": boolean, "hostname": str, "oomScoreAdj": integer,
		"rootfsPropagation": str, "cgroupsPath": str, "resources": resources,
		"sysctl": mapStrings, "rlimits": stringList,
		"uidMappings": listOf(idMapping), "gidMappings": listOf(idMapping),
		"annotations": mapStrings, "runtime": runtime,
	}, "name", "image")
	return object(map[string]*node{
		"kernel": object(map[string]*node{
			"image": str, "cmdline": str, "binary": str, "tar": str, "ucode": str,
		}),
		"init":       stringList,
		"onboot":     listOf(image),
		"onshutdown": listOf(image),
		"services":   listOf(image),
		"trust":      object(map[string]*node{"image": stringList, "org": stringList}),
		"files": listOf(object(map[string]*node{
			"path": str, "directory": boolean, "symlink": str, "contents": str,
			"source": str, "metadata": str, "optional": boolean, "mode": str,
			"uid": strOrInt, "gid": strOrInt,
		}, "path")),
		"volumes": listOf(object(map[string]*node{
			"name": str, "image": str, "readonly": boolean, "format": str, "platforms": stringList,
		}, "name")),
	})
}

// Problem is one thing wrong with a file: where, and what.
type Problem struct {
	File string
	Line int
	// Path is the way to the key, such as services[1].capabilities.
	Path string
	Msg  string
}

func (p Problem) String() string {
	where := p.File
	if p.Line > 0 {
		where = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Path == "" {
		return fmt.Sprintf("%s: %s", where, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", where, p.Path, p.Msg)
}

// Problems is every problem found in a file; it is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxProblems bounds what one file can report, so that a huge broken file
// does not make a huge error.
const maxProblems = 50

// check walks n against the schema s and adds what is wrong to ps.
func check(file, path string, n *yaml.Node, s *node, ps *Problems) {
	if len(*ps) >= maxProblems {
		return
	}
	add := func(n *yaml.Node, path, format string, args ...any) {
		if len(*ps) < maxProblems {
			*ps = append(*ps, Problem{File: file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
		}
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch s.kind {
	case kString:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			add(n, path, "want a string, got %s", describe(n))
		}
	case kBool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			add(n, path, "want true or false, got %s", describe(n))
		}
	case kInt:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			add(n, path, "want an integer, got %s", describe(n))
		}
	case kStringOrInt:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
			add(n, path, "want a name or a number, got %s", describe(n))
		}
	case kList:
		if n.Kind != yaml.SequenceNode {
			add(n, path, "want a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			check(file, fmt.Sprintf("%s[%d]", path, i), item, s.items, ps)
		}
	case kMap:
		if n.Kind != yaml.MappingNode {
			add(n, path, "want a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			check(file, join(path, k.Value), v, s.items, ps)
		}
	case kObject:
		if n.Kind != yaml.MappingNode {
			add(n, path, "want a mapping, got %s", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				add(k, path, "a key must be a plain name")
				continue
			}
			if seen[k.Value] {
				add(k, key, "given twice")
				continue
			}
			seen[k.Value] = true
			sub, ok := s.props[k.Value]
			if !ok {
				add(k, key, "unknown key (known: %s)", strings.Join(keys(s.props), ", "))
				continue
			}
			check(file, key, v, sub, ps)
		}
		for _, r := range s.required {
			if !seen[r] {
				add(n, path, "%s is missing", r)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keys(m map[string]*node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// describe says what a YAML value is, for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		case "!!int":
			return "the integer " + clip(n.Value)
		case "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return clip(n.Value)
		}
		return fmt.Sprintf("%s %q", n.Tag, clip(n.Value))
	}
	return "something else"
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
