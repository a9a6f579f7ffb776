import type { Translation } from '../../translation.js';
import type enUS from '../en-US/commands.js';

const commands: Translation<typeof enUS> = {};

export default commands;
